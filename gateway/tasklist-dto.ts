// What the REST API returns: the DTOs of Polyflow's example task-list API (polyflow.md §5.2), so that its clients
// work unchanged, plus a few fields of ours (applicationName, taskDefinitionKey, lastRefusal, startsThroughForm).
// Form URLs come from templates per application, as Polyflow's form URL resolver does: those a process application
// announces in its Moleculer services' metadata (`formUrls`, keyed by application name), which the gateway takes
// from the service registry wherever the application runs, and those FORM_URLS configures, which win.
//
// Placeholders, as in Polyflow's templates:
// - `${attribute}` is filled here from the task, process definition or data entry (id, formKey, entryType,
//   entryId, processDefinitionKey, …; for a task also the fields of its source reference, e.g.
//   processInstanceId);
// - `%userId%` is left for the client, which fills in the id of the user it acts for (Polyflow's task list does
//   so on click; Taskpool's does the same): the form application then knows who is working on it.

/** One application's form URL templates. */
export type FormUrlTemplates = { task?: string; process?: string; dataEntry?: string };
type Template = FormUrlTemplates;
const TEMPLATE_KINDS = ["task", "process", "dataEntry"] as const;

/** The placeholder clients replace with the acting user's id. */
export const USER_ID_PLACEHOLDER = "%userId%";

/** A document of the view as the DTOs read it: the fields used by name are typed, the rest passes as it is. */
interface ViewDocument {
  [field: string]: unknown;
  applicationName?: string;
}
/** A task of the view. */
export interface TaskDocument extends ViewDocument {
  sourceReference?: { instanceId?: string; definitionId?: string; definitionKey?: string; executionId?: string; applicationName?: string; name?: string };
}
/** A data entry of the view. */
export interface DataEntryDocument extends ViewDocument {
  state?: { state?: string; processingType?: string };
  protocol?: Record<string, unknown>[];
}
/** A process definition of the view. */
export interface ProcessDocument extends ViewDocument {
  applicationName: string;
  processDefinitionKey: string;
  formKey?: string | null;
  startsThroughForm?: boolean;
  processDefinitionVersion?: number | string | null;
}

export class FormUrls {
  private readonly templates: Record<string, Template>;
  private readonly platformUrl: string | null;
  /** The templates the running process applications announce (announce()), JSON for comparison. */
  private announced: Record<string, Template> = {};
  private announcedJson = "[]";

  /**
   * @param templates the configured templates (FORM_URLS): an application's replace those it announces; "*" serves
   *   the kinds an application has no template for.
   * @param platformUrl where Taskpool's own task list is reached from a browser: a process that starts directly
   *   and has no start form template gets a link to its start dialog there, so that Polyflow's "Start new…" menu,
   *   which can only follow links, starts it too; a task without a form template gets a link to itself there.
   *   Null: no such links.
   */
  constructor(templates: Record<string, Template>, platformUrl: string | null = null) {
    this.templates = templates;
    this.platformUrl = platformUrl;
  }

  /** From FORM_URLS and PUBLIC_URL as lib/env.ts reads them. */
  static fromEnvironment(raw: string | undefined, platformUrl: string): FormUrls {
    const base = platformUrl.replace(/\/+$/, "");
    return new FormUrls(raw ? (JSON.parse(raw) as Record<string, Template>) : {}, base);
  }

  /**
   * Takes the templates the services of the cluster announce in their metadata (`formUrls`: application name →
   * templates; strings only, anything else is ignored). True when they differ from the ones known so far.
   */
  announce(services: readonly { metadata?: Record<string, unknown> | null }[]): boolean {
    const announced: Record<string, Template> = {};
    for (const service of services) {
      const formUrls = service.metadata?.formUrls;
      if (!formUrls || typeof formUrls !== "object") continue;
      for (const [application, templates] of Object.entries(formUrls as Record<string, unknown>)) {
        if (!templates || typeof templates !== "object") continue;
        const own: Template = {};
        for (const kind of TEMPLATE_KINDS) {
          const template = (templates as Record<string, unknown>)[kind];
          if (typeof template === "string") own[kind] = template;
        }
        announced[application] = own;
      }
    }
    const json = JSON.stringify(Object.entries(announced).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    if (json === this.announcedJson) return false;
    this.announced = announced;
    this.announcedJson = json;
    return true;
  }

  private resolve(application: string, kind: keyof Template, values: Record<string, unknown>): string | null {
    const own = this.templates[application] ?? this.announced[application];
    const template = own?.[kind] ?? this.templates["*"]?.[kind];
    if (!template) return null;
    return template.replace(/\$\{(\w+)\}/g, (_, key: string) => encodeURIComponent(String(values[key] ?? "")));
  }

  task(task: TaskDocument): string | null {
    const source = task.sourceReference ?? {};
    // The source reference's fields under Polyflow's names, then the task's own (which win).
    const values = { processInstanceId: source.instanceId, processDefinitionId: source.definitionId, processDefinitionKey: source.definitionKey, executionId: source.executionId, ...task };
    const url = this.resolve(task.applicationName ?? source.applicationName ?? "", "task", values);
    if (url !== null || this.platformUrl === null) return url;
    // No form of its own: Taskpool's task list, showing this task, is where it is worked on (and Polyflow's
    // contract wants every task to have a url).
    return `${this.platformUrl}/?task=${encodeURIComponent(String(task.id))}&userId=${USER_ID_PLACEHOLDER}`;
  }
  process(definition: ProcessDocument): string | null {
    // A template addresses a start form: only a definition with one has a form to address.
    const hasForm = typeof definition.formKey === "string" && definition.formKey !== "";
    const url = hasForm ? this.resolve(definition.applicationName, "process", definition) : null;
    if (url !== null || this.platformUrl === null || startsThroughForm(definition)) return url;
    const process = `${encodeURIComponent(definition.applicationName)}/${encodeURIComponent(definition.processDefinitionKey)}`;
    return `${this.platformUrl}/?start=${process}&userId=${USER_ID_PLACEHOLDER}`;
  }
  dataEntry(entry: DataEntryDocument): string | null {
    return this.resolve(entry.applicationName ?? "", "dataEntry", entry);
  }
}

export function taskDto(task: TaskDocument, urls: FormUrls) {
  return {
    id: task.id,
    name: task.name,
    description: task.description,
    url: urls.task(task),
    formKey: task.formKey,
    candidateGroups: task.candidateGroups,
    candidateUsers: task.candidateUsers,
    assignee: task.assignee,
    processName: task.processName ?? task.sourceReference?.name,
    createTime: task.createTime,
    dueDate: task.dueDate,
    followUpDate: task.followUpDate,
    businessKey: task.businessKey,
    priority: task.priority,
    payload: task.payload,
    applicationName: task.applicationName ?? task.sourceReference?.applicationName,
    taskDefinitionKey: task.taskDefinitionKey,
    lastRefusal: task.lastRefusal ?? null,
  };
}

export function dataEntryDto(entry: DataEntryDocument, urls: FormUrls) {
  return {
    entryType: entry.entryType,
    entryId: entry.entryId,
    payload: entry.payload,
    name: entry.name,
    description: entry.description,
    type: entry.type,
    formKey: entry.formKey,
    url: urls.dataEntry(entry),
    applicationName: entry.applicationName,
    currentState: entry.state?.state ?? null,
    currentStateType: entry.state?.processingType ?? null,
    protocol: (entry.protocol ?? []).map((p) => ({
      timestamp: p.time,
      state: p.state,
      stateType: p.processingType,
      user: p.username,
      log: p.logMessage,
      logDetails: p.logDetails,
    })),
    createdDate: entry.createdDate,
    lastModifiedDate: entry.lastModifiedDate,
  };
}

export function processDto(definition: ProcessDocument, urls: FormUrls) {
  return {
    definitionId: definition.processDefinitionId,
    definitionKey: definition.processDefinitionKey,
    // A string in Polyflow's contract (the engine's version number, as text).
    definitionVersion: definition.processDefinitionVersion === null || definition.processDefinitionVersion === undefined ? null : String(definition.processDefinitionVersion),
    applicationName: definition.applicationName,
    processName: definition.processName,
    versionTag: definition.processVersionTag,
    description: definition.processDescription,
    formKey: definition.formKey,
    url: urls.process(definition),
    candidateUsers: definition.candidateStarterUsers,
    candidateGroups: definition.candidateStarterGroups,
    // Ours: true, open `url` to start it, a direct start (POST …/start) is refused.
    startsThroughForm: startsThroughForm(definition),
  };
}

/** Views written before the field existed lack it: a start form then means what it means for a new registration. */
function startsThroughForm(definition: ProcessDocument): boolean {
  return definition.startsThroughForm ?? (typeof definition.formKey === "string" && definition.formKey !== "");
}

// ---- sort names of Polyflow's task list -------------------------------------------------------------------------
// Polyflow's example task list sorts by the names of its own columns (`task.process`, `dataentry.name`,
// `dataentry.currentStatusType`, …), which no view knows. The gateway translates them into the view's fields
// (docs/filters.md), so that clicking a column header sorts instead of failing; every other sort passes as it is,
// and an unknown field is still refused with 400.

const TASK_SORT_ALIASES: Record<string, string> = { "task.process": "task.processName", "task.processName": "task.processName" };
const DATA_ENTRY_SORT_ALIASES: Record<string, string> = {
  currentState: "data.state.state",
  currentStatus: "data.state.state",
  currentStateType: "data.state.processingType",
  currentStatusType: "data.state.processingType",
};

/** The sort directives with the names of Polyflow's client (and of the DTOs) turned into the view's. */
export function viewSort(sort: string[] | undefined, target: "task" | "dataEntry"): string[] | undefined {
  return sort?.map((item) => {
    const match = /^([+-]?)(.*)$/.exec(item.trim())!;
    const sign = match[1]!;
    const field = match[2]!;
    if (target === "task") return `${sign}${TASK_SORT_ALIASES[field] ?? field}`;
    const name = field.startsWith("dataentry.") ? field.slice("dataentry.".length) : null;
    if (name === null) return item;
    return `${sign}${DATA_ENTRY_SORT_ALIASES[name] ?? `data.${name}`}`;
  });
}
