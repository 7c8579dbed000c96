// Upcasters of the domain's event types: how an event stored at an older schema version is lifted to the
// current one when it is read. Every event type starts at version 1; a change of shape adds a step here.
import { Upcasters } from "../lib/upcasting.ts";

export const domainUpcasters = new Upcasters()
  // ProcessDefinitionRegistered 1 → 2: whether it starts through its start form. Definitions registered before
  // knew only their form key; one with a start form needed it then as now.
  .register("ProcessDefinitionRegistered", 1, (data) => ({ ...data, startsThroughForm: data.startsThroughForm ?? (typeof data.formKey === "string" && data.formKey !== "") }));
