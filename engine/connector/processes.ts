// Engine → pool for processes: process definitions (from deployments, and all latest versions at
// reconciliation) registered in the catalogue, process instances brought to the engine's state (start, suspend,
// resume, finish, cancel), and variable changes reported per instance, filtered like task payloads — after which
// the payload of the instance's open tasks is read again (TaskSync).
import type { ProcessVariableChange } from "../../domain/process-variables.ts";
import type { SourceReference } from "../../domain/types.ts";
import { processVariableValueOf } from "../../domain/engine/variables.ts";
import { isErrorOfType } from "../../lib/errors.ts";
import type { InstanceShadow, InstanceShadowState } from "./connector-state.ts";
import type { DeploymentInfo, InstanceOperation, ProcessDefinitionInfo, ProcessInstanceInfo, VariableUpdate } from "./engine-adapter.ts";
import { isVariableIncluded } from "./enrichment.ts";
import { newBatch, type ShadowBatch, type SyncContext } from "./sync-context.ts";
import { forEachLimited, handleInOrder, hashOf, type Failure } from "./support.ts";
import { sourceReferenceOf } from "./task-diff.ts";
import type { TaskSync } from "./tasks.ts";

export class ProcessSync {
  private readonly ctx: SyncContext;
  private readonly tasks: TaskSync;

  constructor(ctx: SyncContext, tasks: TaskSync) {
    this.ctx = ctx;
    this.tasks = tasks;
  }

  /** Deployments from their feed, in order: their definitions are registered. */
  handleDeployments(deployments: DeploymentInfo[]): Promise<Failure<DeploymentInfo>[]> {
    return handleInOrder(deployments, (row) => this.registerDeployment(row.id));
  }

  /** Started or finished instances from their feeds, in order, their shadows kept together at the end. */
  async handleInstances(instances: ProcessInstanceInfo[]): Promise<Failure<ProcessInstanceInfo>[]> {
    const batch = newBatch();
    const shadows = await this.ctx.state().getInstances(instances.map((i) => i.id));
    const failures = await handleInOrder(instances, (row) => this.observeInstance(row, shadows.get(row.id) ?? null, batch));
    await this.ctx.flush(batch);
    return failures;
  }

  /** Suspensions and activations: the instance is read again. */
  handleOperations(operations: InstanceOperation[]): Promise<Failure<InstanceOperation>[]> {
    return handleInOrder(operations, async (row) => {
      const instance = await this.ctx.adapter.getProcessInstance(row.processInstanceId);
      if (instance) await this.observeInstance(instance);
    });
  }

  async registerDeployment(deploymentId: string): Promise<void> {
    await this.registerDefinitions(deploymentId, false);
  }

  async registerDefinitions(deploymentId: string | null, latestOnly: boolean): Promise<void> {
    for (let firstResult = 0; ; firstResult += this.ctx.settings.pageSize) {
      const page = await this.ctx.adapter.listProcessDefinitions({
        firstResult,
        maxResults: this.ctx.settings.pageSize,
        processDefinitionKeys: this.ctx.keys,
        deploymentId,
        latestVersionOnly: latestOnly,
      });
      this.ctx.throwTransient(await handleInOrder(page.rows, (definition) => this.registerDefinition(definition)), "process definitions");
      if (page.done) break;
    }
  }

  private async registerDefinition(definition: ProcessDefinitionInfo): Promise<void> {
    if (this.ctx.keys !== null && !this.ctx.keys.includes(definition.key)) return;
    const params = {
      processDefinitionId: definition.id,
      processDefinitionKey: definition.key,
      processDefinitionVersion: definition.version,
      applicationName: this.ctx.app,
      processName: definition.name ?? definition.key,
      processVersionTag: definition.versionTag,
      processDescription: definition.description,
      formKey: definition.startFormKey,
      // Said explicitly, so that the catalogue never guesses: a start form is needed unless configured optional.
      startsThroughForm: definition.startFormKey !== null && definition.startFormKey !== "" && !this.ctx.settings.directStartKeys.includes(definition.key),
      startableFromTasklist: definition.startableInTasklist,
      candidateStarterUsers: definition.candidateStarterUsers,
      candidateStarterGroups: definition.candidateStarterGroups,
    };
    const known = await this.ctx.state().getDefinition(definition.id);
    if (known && hashOf(known) === hashOf(params)) return;
    await this.ctx.send("processDefinition.register", params, this.ctx.commandId("pd", definition.id, hashOf(params)));
    await this.ctx.state().saveDefinition(definition.id, params);
  }

  private async instanceReference(instance: ProcessInstanceInfo): Promise<SourceReference> {
    const definition = await this.ctx.adapter.getProcessDefinition(instance.definitionId);
    return sourceReferenceOf(
      { processInstanceId: instance.id, executionId: instance.id, processDefinitionId: instance.definitionId, tenantId: instance.tenantId },
      { applicationName: this.ctx.app, processDefinitionKey: instance.definitionKey, processName: instance.definitionName ?? definition?.name ?? instance.definitionKey },
    );
  }

  /** Brings the pool's instance to the engine's state: start when unknown, then suspend, resume, finish or cancel. */
  async observeInstance(instance: ProcessInstanceInfo, known?: InstanceShadow | null, batch?: ShadowBatch): Promise<void> {
    if (this.ctx.keys !== null && !this.ctx.keys.includes(instance.definitionKey)) return;
    const target: InstanceShadowState =
      instance.state === "ACTIVE" ? "RUNNING" : instance.state === "SUSPENDED" ? "SUSPENDED" : instance.state === "EXTERNALLY_TERMINATED" ? "CANCELLED" : "FINISHED";
    const db = this.ctx.state();
    const shadow = known === undefined ? await db.getInstance(instance.id) : known;
    if (shadow && (shadow.state === target || shadow.state === "FINISHED" || shadow.state === "CANCELLED")) return;
    const sourceReference = await this.instanceReference(instance);
    const base = { processInstanceId: instance.id, sourceReference };
    const start = () =>
      this.ctx.send(
        "processInstance.start",
        { ...base, businessKey: instance.businessKey, startUserId: instance.startUserId, superInstanceId: instance.superProcessInstanceId, startActivityId: instance.startActivityId },
        this.ctx.commandId("pi", instance.id, "start"),
      );
    const transition = async (): Promise<unknown> => {
      switch (target) {
        // Suspend and resume carry no commandId on purpose: an instance may be suspended and resumed many times, so
        // no id names one occurrence; the decider makes them idempotent by state instead (a retried suspend of a
        // suspended instance adds nothing), which is what a retry after a timeout needs.
        case "RUNNING":
          return shadow?.state === "SUSPENDED" ? this.ctx.send("processInstance.resume", base) : undefined;
        case "SUSPENDED":
          return this.ctx.send("processInstance.suspend", base);
        case "FINISHED":
          return this.ctx.send("processInstance.finish", { ...base, businessKey: instance.businessKey, superInstanceId: instance.superProcessInstanceId }, this.ctx.commandId("pi", instance.id, "finish"));
        case "CANCELLED":
          return this.ctx.send(
            "processInstance.cancel",
            { ...base, businessKey: instance.businessKey, superInstanceId: instance.superProcessInstanceId, deleteReason: instance.deleteReason },
            this.ctx.commandId("pi", instance.id, "cancel"),
          );
      }
    };
    if (!shadow) await start();
    try {
      await transition();
    } catch (err) {
      if (!shadow || !isErrorOfType(err, "NOT_FOUND")) throw err;
      // Known here, unknown to the pool (its store was reset): report the start again, then the change.
      await start();
      await transition();
    }
    await this.keepInstanceShadow({ instanceId: instance.id, state: target, snapshot: { definitionKey: instance.definitionKey, businessKey: instance.businessKey } }, batch);
  }

  private async keepInstanceShadow(shadow: InstanceShadow, batch?: ShadowBatch): Promise<void> {
    if (batch) batch.instances.set(shadow.instanceId, shadow);
    else await this.ctx.state().saveInstance(shadow);
  }

  async reconcileInstances(): Promise<void> {
    const listed = new Set<string>();
    for (let firstResult = 0; !this.ctx.isStopping(); firstResult += this.ctx.settings.pageSize) {
      const page = await this.ctx.adapter.listRunningInstances({ firstResult, maxResults: this.ctx.settings.pageSize, processDefinitionKeys: this.ctx.keys });
      const shadows = await this.ctx.state().getInstances(page.rows.map((i) => i.id));
      const batch = newBatch();
      for (const instance of page.rows) {
        listed.add(instance.id);
        this.tasks.rememberBusinessKey(instance.id, instance.businessKey);
      }
      const failures = await forEachLimited(page.rows, this.ctx.settings.concurrency, (instance) => this.observeInstance(instance, shadows.get(instance.id) ?? null, batch));
      await this.ctx.flush(batch);
      this.ctx.throwTransient(failures, "reconciliation");
      if (page.done) break;
    }
    let after: string | null = null;
    for (;;) {
      const ids = await this.ctx.state().runningInstanceIds(after, 500);
      if (ids.length === 0) break;
      for (const id of ids) {
        if (listed.has(id)) continue;
        const instance = await this.ctx.adapter.getProcessInstance(id);
        if (instance) await this.observeInstance(instance);
      }
      after = ids[ids.length - 1]!;
    }
  }

  /** Reports variable changes per instance (filtered like payloads), then refreshes the payload of its open tasks. */
  async handleVariableUpdates(rows: VariableUpdate[]): Promise<Failure<VariableUpdate>[]> {
    const byInstance = new Map<string, VariableUpdate[]>();
    for (const row of rows) {
      const list = byInstance.get(row.processInstanceId) ?? [];
      list.push(row);
      byInstance.set(row.processInstanceId, list);
    }
    const failures: Failure<VariableUpdate>[] = [];
    for (const [instanceId, updates] of byInstance) {
      try {
        if (this.ctx.settings.collectProcessVariables) await this.reportVariableChanges(instanceId, updates);
        await this.tasks.refreshTasksOfInstance(instanceId);
      } catch (error) {
        for (const update of updates) failures.push({ item: update, error });
      }
    }
    return failures;
  }

  private async reportVariableChanges(instanceId: string, updates: VariableUpdate[]): Promise<void> {
    const first = updates[0]!;
    const definition = await this.tasks.definitionOf(first.processDefinitionId);
    if (!definition) return;
    const scope = { processDefinitionKey: definition.key };
    const changes: ProcessVariableChange[] = [];
    for (const update of updates) {
      if (!isVariableIncluded(this.ctx.settings.enrichment.variableFilters, scope, update.variableName)) continue;
      const scopeActivityInstanceId = update.activityInstanceId ?? instanceId;
      if (update.kind === "delete") {
        changes.push({ kind: "delete", variableInstanceId: update.variableInstanceId, variableName: update.variableName, scopeActivityInstanceId });
      } else if (update.value !== undefined) {
        changes.push({
          kind: update.kind,
          variableInstanceId: update.variableInstanceId,
          variableName: update.variableName,
          revision: update.revision,
          scopeActivityInstanceId,
          value: processVariableValueOf(update.value),
        });
      }
    }
    if (changes.length === 0) return;
    const sourceReference = sourceReferenceOf(
      { processInstanceId: instanceId, executionId: instanceId, processDefinitionId: first.processDefinitionId ?? "", tenantId: null },
      { applicationName: this.ctx.app, processDefinitionKey: definition.key, processName: definition.name },
    );
    await this.ctx.send("processVariable.change", { sourceReference, variableChanges: changes }, this.ctx.commandId("vars", instanceId, hashOf(updates.map((u) => u.id))));
  }
}
