// Engine → pool for user tasks: each task the engine shows becomes the pool's snapshot (enriched with process
// data: task-diff.ts, enrichment.ts) and is diffed against its shadow, the snapshot the pool was last told; the
// smallest ordered set of task commands goes to the pool, and the new shadow is kept. A task is never declared
// gone because a list lacks it: only a 404 of the task itself, with history saying how it ended, ends it. A
// shadow lost or never written is recovered from the pool's own stream, so that nothing is reported twice.
import { fold } from "../../domain/decider.ts";
import { taskDecider, taskStreamId, type TaskEvent, type TaskSnapshot } from "../../domain/task.ts";
import { plainValues } from "../../domain/engine/variables.ts";
import { isErrorOfType } from "../../lib/errors.ts";
import type { TaskShadow } from "./connector-state.ts";
import type { EngineTask, EngineTaskWithDetails, FinishedTask } from "./engine-adapter.ts";
import { newBatch, type ShadowBatch, type SyncContext } from "./sync-context.ts";
import { forEachLimited, hashOf, markerOf, type Failure } from "./support.ts";
import { applyTaskCommands, diffTask, finishTask, taskSnapshotOf, type TaskCommandPlan } from "./task-diff.ts";

export class TaskSync {
  private readonly ctx: SyncContext;
  /** Business keys of process instances, read once per instance (cleared at each reconciliation). */
  private readonly businessKeys = new Map<string, string | null>();

  constructor(ctx: SyncContext) {
    this.ctx = ctx;
  }

  forgetBusinessKeys(): void {
    this.businessKeys.clear();
  }

  /** Open tasks from the tasks feed: observed with their shadows read at once, kept together at the end. */
  async handleListed(tasks: EngineTask[]): Promise<Failure<EngineTask>[]> {
    const batch = newBatch();
    const shadows = await this.loadShadows(tasks.map((t) => t.id));
    await this.primeBusinessKeys(tasks.map((t) => t.processInstanceId));
    const failures = await forEachLimited(tasks, this.ctx.settings.concurrency, (task) => this.observeListedTask(task, shadows.get(task.id) ?? null, batch));
    await this.ctx.flush(batch);
    return failures;
  }

  /** Ended tasks from the history feed. */
  async handleFinished(finished: FinishedTask[]): Promise<Failure<FinishedTask>[]> {
    const batch = newBatch();
    const shadows = await this.loadShadows(finished.map((t) => t.id));
    const failures = await forEachLimited(finished, this.ctx.settings.concurrency, (task) => this.observeFinishedTask(task, shadows.get(task.id) ?? null, batch));
    await this.ctx.flush(batch);
    return failures;
  }

  /**
   * Walks every open task of the engine and every task open in the shadows, and repairs the differences;
   * answers with the number of open tasks the engine listed.
   */
  async reconcile(): Promise<number> {
    const { adapter, settings } = this.ctx;
    const listed = new Set<string>();
    for (let firstResult = 0; !this.ctx.isStopping(); firstResult += settings.pageSize) {
      const page = await adapter.listOpenTasks({ firstResult, maxResults: settings.pageSize, processDefinitionKeys: this.ctx.keys });
      for (const task of page.rows) listed.add(task.id);
      const shadows = await this.loadShadows(page.rows.map((t) => t.id));
      await this.primeBusinessKeys(page.rows.map((t) => t.processInstanceId));
      const batch = newBatch();
      // Everything is read again (no shortcut on unchanged markers): this is what repairs a change the feeds
      // could not tell apart, such as two changes of one task within one millisecond.
      const failures = await forEachLimited(page.rows, settings.concurrency, async (task) => {
        const shadow = shadows.get(task.id) ?? null;
        if (shadow && shadow.status !== "open") return;
        const details = await adapter.loadTaskDetails(task);
        if (details) await this.observeTask(details, shadow, batch);
        else await this.confirmTaskGone(task.id);
      });
      await this.ctx.flush(batch);
      this.ctx.throwTransient(failures, "reconciliation");
      if (page.done) break;
    }
    // Open in the pool, not listed by the engine: confirm one by one (a 404 of the task itself, then history).
    let after: string | null = null;
    for (;;) {
      const ids = await this.ctx.state().openTaskIds(after, 500);
      if (ids.length === 0) break;
      for (const taskId of ids) if (!listed.has(taskId)) await this.confirmTaskGone(taskId);
      after = ids[ids.length - 1]!;
    }
    return listed.size;
  }

  /** The shadow of a task: from the connector's state, else recovered from the pool's stream (null: the pool has none). */
  async loadShadow(taskId: string): Promise<TaskShadow | null> {
    const stored = await this.ctx.state().getTask(taskId);
    if (stored) return stored;
    return this.shadowFromPool(taskId);
  }

  /** The shadows of several tasks with one read of the state (the pool's streams for those it lacks). */
  async loadShadows(taskIds: readonly string[]): Promise<Map<string, TaskShadow | null>> {
    const stored = await this.ctx.state().getTasks(taskIds);
    const result = new Map<string, TaskShadow | null>(stored);
    const missing = taskIds.filter((id) => !stored.has(id));
    await forEachLimited(missing, this.ctx.settings.concurrency, async (id) => {
      result.set(id, await this.shadowFromPool(id));
    }).then((failures) => {
      if (failures.length > 0) throw failures[0]!.error;
    });
    return result;
  }

  /**
   * A task the connector's state does not know may still be known to the pool (the state was lost, or the
   * connector died between sending and saving): fold its stream, so that nothing is reported twice.
   */
  private async shadowFromPool(taskId: string): Promise<TaskShadow | null> {
    const stream = await this.ctx.call("eventstore.readStream", {
      streamId: taskStreamId(taskId),
      allowEmpty: true,
    });
    if (stream.streamVersion === 0) return null;
    const folded = fold(taskDecider, stream.events.map((e) => ({ type: e.type, data: e.data }) as unknown as TaskEvent));
    if (!folded.task) return null;
    return {
      taskId,
      status: folded.status === "completed" ? "completed" : folded.status === "deleted" ? "deleted" : "open",
      processInstanceId: folded.task.sourceReference.instanceId,
      snapshot: folded.task,
      streamVersion: stream.streamVersion,
      engineMarker: null,
    };
  }

  /** Reads the business keys of many instances in one request (an import would otherwise ask once per task). */
  async primeBusinessKeys(instanceIds: readonly string[]): Promise<void> {
    const missing = [...new Set(instanceIds)].filter((id) => !this.businessKeys.has(id));
    for (let i = 0; i < missing.length; i += 100) {
      const chunk = missing.slice(i, i + 100);
      const instances = await this.ctx.adapter.getProcessInstances(chunk);
      for (const instance of instances) this.rememberBusinessKey(instance.id, instance.businessKey);
    }
  }

  rememberBusinessKey(instanceId: string, businessKey: string | null): void {
    if (this.businessKeys.size > 10_000) this.businessKeys.clear();
    this.businessKeys.set(instanceId, businessKey);
  }

  private async businessKeyOf(instanceId: string): Promise<string | null> {
    if (this.businessKeys.has(instanceId)) return this.businessKeys.get(instanceId)!;
    const instance = await this.ctx.adapter.getProcessInstance(instanceId);
    const key = instance?.businessKey ?? null;
    this.rememberBusinessKey(instanceId, key);
    return key;
  }

  /** Key and name of a definition, or null when the connector does not collect that process. */
  async definitionOf(definitionId: string | null): Promise<{ key: string; name: string } | null> {
    if (!definitionId) return null;
    const definition = await this.ctx.adapter.getProcessDefinition(definitionId);
    if (!definition) return null;
    if (this.ctx.keys !== null && !this.ctx.keys.includes(definition.key)) return null;
    return { key: definition.key, name: definition.name ?? definition.key };
  }

  private async snapshotOf(task: EngineTaskWithDetails): Promise<TaskSnapshot | null> {
    const definition = await this.definitionOf(task.processDefinitionId);
    if (!definition) return null;
    return taskSnapshotOf(
      { ...task },
      {
        applicationName: this.ctx.app,
        processDefinitionKey: definition.key,
        processName: definition.name,
        businessKey: await this.businessKeyOf(task.processInstanceId),
        variables: plainValues(task.variables),
      },
      this.ctx.settings.enrichment,
    );
  }

  /**
   * A task from a list: its candidates are read unless the shadow says that nothing changed in the engine since
   * (candidate changes move `lastUpdated`), which keeps reconciliation cheap.
   */
  async observeListedTask(task: EngineTask, known?: TaskShadow | null, batch?: ShadowBatch): Promise<void> {
    const shadow = known === undefined ? await this.loadShadow(task.id) : known;
    const marker = markerOf(task);
    let details: EngineTaskWithDetails | null;
    if (shadow && shadow.engineMarker !== null && shadow.engineMarker === marker && task.variables && !this.ctx.settings.enrichment.assignment) {
      details = { ...task, candidateUsers: shadow.snapshot.candidateUsers, candidateGroups: shadow.snapshot.candidateGroups, variables: task.variables };
    } else {
      details = await this.ctx.adapter.loadTaskDetails(task);
    }
    if (details === null) {
      // Gone between the list and the details: ask the task itself.
      await this.refreshTask(task.id);
      return;
    }
    await this.observeTask(details, shadow, batch);
  }

  async observeTask(task: EngineTaskWithDetails, known?: TaskShadow | null, batch?: ShadowBatch): Promise<void> {
    const snapshot = await this.snapshotOf(task);
    if (!snapshot) return;
    const shadow = known === undefined ? await this.loadShadow(task.id) : known;
    // The pool has seen its end already; a late list entry changes nothing.
    if (shadow && shadow.status !== "open") return;
    const marker = markerOf(task);
    const plans = diffTask(shadow?.snapshot ?? null, snapshot);
    if (plans.length === 0) {
      if (shadow && shadow.engineMarker !== marker) await this.keepTaskShadow({ ...shadow, engineMarker: marker }, batch);
      return;
    }
    await this.applyPlans(task.id, shadow, plans, "open", marker, snapshot, batch);
  }

  async observeFinishedTask(finished: FinishedTask, known?: TaskShadow | null, batch?: ShadowBatch): Promise<void> {
    const shadow = known === undefined ? await this.loadShadow(finished.id) : known;
    if (shadow && shadow.status !== "open") return;
    let snapshot: TaskSnapshot | null = null;
    if (!shadow) {
      // Created and ended between two polls (or before an import caught it): report it whole, then its end.
      const definition = await this.definitionOf(finished.processDefinitionId);
      if (!definition || !finished.processInstanceId || !finished.processDefinitionId) return;
      const [variables, candidates] = await Promise.all([
        this.ctx.adapter.getProcessVariables(finished.processInstanceId),
        this.ctx.adapter.getFinishedTaskCandidates(finished.id),
      ]);
      snapshot = taskSnapshotOf(
        {
          id: finished.id,
          taskDefinitionKey: finished.taskDefinitionKey,
          name: finished.name,
          description: finished.description,
          formKey: null,
          assignee: finished.assignee,
          owner: finished.owner,
          priority: finished.priority,
          createTime: finished.startTime,
          dueDate: finished.dueDate,
          followUpDate: finished.followUpDate,
          processInstanceId: finished.processInstanceId,
          executionId: finished.executionId,
          processDefinitionId: finished.processDefinitionId,
          tenantId: finished.tenantId,
          ...candidates,
        },
        {
          applicationName: this.ctx.app,
          processDefinitionKey: definition.key,
          processName: definition.name,
          businessKey: await this.businessKeyOf(finished.processInstanceId),
          variables: plainValues(variables),
        },
        this.ctx.settings.enrichment,
      );
    }
    const plans = finishTask(shadow?.snapshot ?? null, { outcome: finished.outcome, assignee: finished.assignee, deleteReason: finished.deleteReason, snapshot });
    if (plans.length === 0) return;
    await this.applyPlans(finished.id, shadow, plans, finished.outcome, finished.endTime, null, batch);
  }

  /**
   * Sends the commands of one task in order and keeps the new shadow. Command ids combine the pool's stream
   * version with the command's content: a retry of the same change is recognised, a later equal-looking change
   * (after the version moved) is not mistaken for it.
   */
  private async applyPlans(
    taskId: string,
    shadow: TaskShadow | null,
    plans: TaskCommandPlan[],
    status: TaskShadow["status"],
    marker: string | null,
    snapshot: TaskSnapshot | null,
    batch?: ShadowBatch,
  ): Promise<void> {
    let version = shadow?.streamVersion ?? 0;
    let applied: TaskSnapshot | null = shadow?.snapshot ?? null;
    for (let i = 0; i < plans.length; i++) {
      const plan = plans[i]!;
      const commandId = this.ctx.commandId("task", taskId, `v${version}`, plan.action, hashOf(plan.params));
      try {
        const result = await this.ctx.send(`task.${plan.action}`, plan.params, commandId);
        version = Math.max(version, result.version);
        applied = applyTaskCommands(applied, [plan]);
      } catch (err) {
        const whole = snapshot ?? applied;
        if (!isErrorOfType(err, "NOT_FOUND") || plan.action === "create" || !whole) throw err;
        // The pool does not know the task (its store was reset): report it whole again, then go on — an open
        // task's create absorbs the rest, an end is reported after it.
        this.ctx.logger.warn(`Engine connector ${this.ctx.app}: the pool has no task ${taskId}; creating it again`);
        const result = await this.ctx.send("task.create", { ...whole, enriched: true }, this.ctx.commandId("task", taskId, "recreate", hashOf(whole)));
        version = result.version;
        applied = whole;
        if (snapshot) break;
        i--;
      }
    }
    const finalSnapshot = snapshot ?? applied;
    if (!finalSnapshot) return;
    await this.keepTaskShadow(
      { taskId, status, processInstanceId: finalSnapshot.sourceReference.instanceId, snapshot: finalSnapshot, streamVersion: version, engineMarker: marker },
      batch,
    );
  }

  /**
   * Keeps a shadow: now, or with the rest of a page in one statement. A crash before a page's shadows are
   * written costs nothing but a re-read: the pool's stream tells what was sent.
   */
  private async keepTaskShadow(shadow: TaskShadow, batch?: ShadowBatch): Promise<void> {
    if (batch) batch.tasks.set(shadow.taskId, shadow);
    else await this.ctx.state().saveTask(shadow);
  }

  /** Reads one task now: open → diff; gone → how it ended, from history. Never concludes an end from absence alone. */
  async refreshTask(taskId: string): Promise<void> {
    const task = await this.ctx.adapter.getTask(taskId);
    if (task) {
      const details = await this.ctx.adapter.loadTaskDetails(task);
      if (details) {
        await this.observeTask(details);
        return;
      }
    }
    const finished = await this.ctx.adapter.getFinishedTask(taskId);
    if (finished) await this.observeFinishedTask(finished);
  }

  /** Re-reads the open tasks of one instance (their payload follows its variables). */
  async refreshTasksOfInstance(instanceId: string): Promise<void> {
    const engineIds = new Set<string>();
    for (let firstResult = 0; ; firstResult += this.ctx.settings.pageSize) {
      const page = await this.ctx.adapter.listOpenTasks({ firstResult, maxResults: this.ctx.settings.pageSize, processDefinitionKeys: this.ctx.keys, processInstanceId: instanceId });
      for (const task of page.rows) {
        engineIds.add(task.id);
        await this.observeListedTask(task);
      }
      if (page.done) break;
    }
    // Tasks of the instance the pool holds open but the engine no longer lists: ask each.
    for (const taskId of await this.ctx.state().openTaskIdsOfInstance(instanceId)) {
      if (!engineIds.has(taskId)) await this.refreshTask(taskId);
    }
  }

  async confirmTaskGone(taskId: string): Promise<void> {
    const task = await this.ctx.adapter.getTask(taskId);
    if (task) {
      const details = await this.ctx.adapter.loadTaskDetails(task);
      if (details) return this.observeTask(details);
    }
    const finished = await this.ctx.adapter.getFinishedTask(taskId);
    if (finished) return this.observeFinishedTask(finished);
    if (task) return;
    // The engine answered 404 for the task itself and history has nothing (cleaned up, or history off).
    const shadow = await this.loadShadow(taskId);
    if (!shadow || shadow.status !== "open") return;
    if (this.ctx.keys !== null && !this.ctx.keys.includes(shadow.snapshot.sourceReference.definitionKey)) return;
    const plans = finishTask(shadow.snapshot, { outcome: "deleted", assignee: null, deleteReason: "gone from the engine without history" });
    await this.applyPlans(taskId, shadow, plans, "deleted", null, null);
  }
}
