// Reads a BPMN 2.0 document once with bpmn-moddle and camunda-bpmn-moddle — the parser bpmn-engine itself runs
// on — and derives from that model what the platform needs to know of its processes: id, name, documentation,
// whether executable, version tag, candidate starters (`camunda:candidateStarterUsers/Groups`), whether they may
// be started from a task list (`camunda:isStartableInTasklist`) and the start form key. The embedded engine
// deploys from it (engine/embedded/), the Operaton connector reads the candidate starters from a deployed
// definition's XML with it (Camunda 7's REST API has no endpoint for them), and the example application checks
// who may start its process. The Operaton extension namespace reads as the Camunda one, whatever prefix a
// document binds either to.
//
// bpmn-moddle (about a hundred modules with its schemas) is loaded at the first document, not with this module.
import { createRequire } from "node:module";
import type BpmnModdle from "bpmn-moddle";
import type { ModdleContext, ModdleElement } from "bpmn-moddle";

export const CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn";
export const OPERATON_NS = "http://operaton.org/schema/1.0/bpmn";

/** What the start menu needs of a process. */
export interface BpmnProcessAttributes {
  id: string;
  name: string | null;
  candidateStarterUsers: string[];
  candidateStarterGroups: string[];
  /** Defaults to true, as in the engine. */
  startableInTasklist: boolean;
  versionTag: string | null;
}

/** A process of a document, as the model says. */
export interface ProcessModel extends BpmnProcessAttributes {
  executable: boolean;
  /** Its documentation (all parts joined), or null. */
  description: string | null;
  /** The `camunda:formKey` of its start event, or null. */
  startFormKey: string | null;
  /** The moddle element (for whoever needs more of it). */
  element: ProcessElement;
}

/** A parsed document: the moddle context (what bpmn-engine runs from) and its processes in document order. */
export interface BpmnModel {
  context: ModdleContext;
  processes: ProcessModel[];
}

// The parts of moddle elements that are read here (the schemas' property names).

export interface DocumentedElement extends ModdleElement {
  name?: string;
  documentation?: { text?: string }[];
}

export interface FlowElement extends DocumentedElement {
  id: string;
  formKey?: string;
  eventDefinitions?: ModdleElement[];
  attachedToRef?: ModdleElement;
  triggeredByEvent?: boolean;
  isForCompensation?: boolean;
  /** A sequence flow's ends. */
  sourceRef?: ModdleElement;
  targetRef?: ModdleElement;
}

export interface ProcessElement extends DocumentedElement {
  id: string;
  isExecutable?: boolean;
  versionTag?: string;
  candidateStarterUsers?: string;
  candidateStarterGroups?: string;
  isStartableInTasklist?: boolean;
  flowElements?: FlowElement[];
}

interface DefinitionsElement extends ModdleElement {
  rootElements?: ModdleElement[];
}

let parser: Promise<BpmnModdle> | null = null;

function moddle(): Promise<BpmnModdle> {
  parser ??= import("bpmn-moddle").then(({ default: Moddle }) => {
    const camunda = createRequire(import.meta.url)("camunda-bpmn-moddle/resources/camunda.json") as object;
    // Operaton's namespace has the same schema as Camunda's: its names are read under the camunda prefix.
    return new Moddle({ camunda }, { nsMap: { [OPERATON_NS]: "camunda" } });
  });
  return parser;
}

/** The moddle context of a document; rejects when it is not BPMN 2.0 definitions. */
export async function parseBpmnContext(xml: string): Promise<ModdleContext> {
  const context = await (await moddle()).fromXML(xml.trim());
  if (context.rootElement?.$type !== "bpmn:Definitions") throw new Error("no BPMN definitions found");
  return context;
}

/** A comma-separated list of names; expressions (`${…}`, `#{…}`) cannot be resolved outside the engine and are left out. */
export function nameList(value: string | undefined | null): string[] {
  if (!value) return [];
  const names = value
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "" && !name.includes("${") && !name.includes("#{"));
  return [...new Set(names)].sort();
}

/** The documentation text of an element (all parts joined), or null. */
export function documentationOf(element: Pick<DocumentedElement, "documentation">): string | null {
  const texts = (element.documentation ?? []).map((part) => part.text ?? "").filter((text) => text.trim() !== "");
  return texts.length > 0 ? texts.join("\n") : null;
}

/** The ids of the elements a sequence flow of the process leads to. */
export function flowTargets(process: ProcessElement): Set<string> {
  const targets = new Set<string>();
  for (const element of process.flowElements ?? []) {
    if (element.$type === "bpmn:SequenceFlow" && element.targetRef?.id) targets.add(element.targetRef.id);
  }
  return targets;
}

/** Whether a flow element starts a path of its own (nothing leads to it), as bpmn-elements' `isStart`. */
export function isStartElement(element: FlowElement, targets: Set<string>): boolean {
  return element.$type !== "bpmn:SequenceFlow" && !targets.has(element.id) && !element.attachedToRef && !element.triggeredByEvent && !element.isForCompensation;
}

function processModelOf(element: ProcessElement): ProcessModel {
  const targets = flowTargets(element);
  const start = (element.flowElements ?? []).find((flowElement) => flowElement.$type === "bpmn:StartEvent" && isStartElement(flowElement, targets) && flowElement.formKey);
  return {
    id: element.id,
    name: element.name ?? null,
    executable: element.isExecutable === true,
    description: documentationOf(element),
    versionTag: element.versionTag ?? null,
    candidateStarterUsers: nameList(element.candidateStarterUsers),
    candidateStarterGroups: nameList(element.candidateStarterGroups),
    startableInTasklist: element.isStartableInTasklist !== false,
    startFormKey: start?.formKey ?? null,
    element,
  };
}

/** The processes of a moddle context, in document order. */
export function processesOf(context: ModdleContext): ProcessModel[] {
  const definitions = context.rootElement as DefinitionsElement;
  return (definitions.rootElements ?? []).filter((element): element is ProcessElement => element.$type === "bpmn:Process").map(processModelOf);
}

/** Parses a document once: its moddle context and its processes; rejects when it is not BPMN. */
export async function parseBpmn(xml: string): Promise<BpmnModel> {
  const context = await parseBpmnContext(xml);
  return { context, processes: processesOf(context) };
}

/** The start menu's attributes of every process in the document; rejects when it is not BPMN. */
export async function readProcessAttributes(xml: string): Promise<BpmnProcessAttributes[]> {
  return (await parseBpmn(xml)).processes.map(({ id, name, candidateStarterUsers, candidateStarterGroups, startableInTasklist, versionTag }) => ({
    id,
    name,
    candidateStarterUsers,
    candidateStarterGroups,
    startableInTasklist,
    versionTag,
  }));
}

/** The attributes of the process with the given id (the definition key); null when there is none or the document is not BPMN. */
export async function processAttributesOf(xml: string, processId: string): Promise<BpmnProcessAttributes | null> {
  try {
    return (await readProcessAttributes(xml)).find((process) => process.id === processId) ?? null;
  } catch {
    return null;
  }
}
