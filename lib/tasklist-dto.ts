// What the REST API returns: the DTOs of Polyflow's example task-list API (polyflow.md §5.2), so that its clients
// work unchanged, plus a few fields of ours (applicationName, taskDefinitionKey, lastRefusal). Form URLs come
// from templates per application (FORM_URLS), as Polyflow's form URL resolver does.

type Template = { task?: string; process?: string; dataEntry?: string };

export class FormUrls {
  constructor(private readonly templates: Record<string, Template>) {}

  static fromEnvironment(raw = process.env.FORM_URLS, appPort = process.env.APP_PORT ?? "8080"): FormUrls {
    const defaults: Record<string, Template> = {
      "example-process-approval": {
        task: `http://localhost:${appPort}/forms/#/tasks/\${formKey}/\${id}`,
        process: `http://localhost:${appPort}/forms/#/start`,
        dataEntry: `http://localhost:${appPort}/forms/#/approval-request/\${entryId}`,
      },
    };
    if (!raw) return new FormUrls(defaults);
    const parsed = JSON.parse(raw) as Record<string, Template>;
    return new FormUrls({ ...defaults, ...parsed });
  }

  private resolve(application: string, kind: keyof Template, values: Record<string, unknown>): string | null {
    const template = this.templates[application]?.[kind] ?? this.templates["*"]?.[kind];
    if (!template) return null;
    return template.replace(/\$\{(\w+)\}/g, (_, key: string) => encodeURIComponent(String(values[key] ?? "")));
  }

  task(task: Record<string, any>): string | null {
    return this.resolve(task.applicationName ?? task.sourceReference?.applicationName, "task", task);
  }
  process(definition: Record<string, any>): string | null {
    return this.resolve(definition.applicationName, "process", definition);
  }
  dataEntry(entry: Record<string, any>): string | null {
    return this.resolve(entry.applicationName, "dataEntry", entry);
  }
}

export function taskDto(task: Record<string, any>, urls: FormUrls) {
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

export function dataEntryDto(entry: Record<string, any>, urls: FormUrls) {
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
    protocol: (entry.protocol ?? []).map((p: Record<string, any>) => ({
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

export function processDto(definition: Record<string, any>, urls: FormUrls) {
  return {
    definitionId: definition.processDefinitionId,
    definitionKey: definition.processDefinitionKey,
    definitionVersion: definition.processDefinitionVersion,
    applicationName: definition.applicationName,
    processName: definition.processName,
    versionTag: definition.processVersionTag,
    description: definition.processDescription,
    formKey: definition.formKey,
    url: urls.process(definition),
    candidateUsers: definition.candidateStarterUsers,
    candidateGroups: definition.candidateStarterGroups,
  };
}
