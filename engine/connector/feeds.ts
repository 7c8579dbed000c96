// The engine connector's change feeds: the order a poll reads them in, which ones the settings switch on, how
// each is read from the engine adapter, and what identifies one of its rows for the de-duplication window
// (change-window.ts) — its key and its change time on the engine's clock.
import type { ChangeRow } from "./change-window.ts";
import type {
  ChangeQuery,
  DeploymentInfo,
  EngineAdapter,
  EngineTask,
  FeedName,
  FinishedTask,
  InstanceOperation,
  PageOf,
  ProcessInstanceInfo,
  VariableUpdate,
} from "./engine-adapter.ts";
import type { EngineConnectorSettings } from "./settings.ts";
import { markerOf } from "./support.ts";

/** The row type of each feed. */
export interface FeedRows {
  tasks: EngineTask;
  finishedTasks: FinishedTask;
  deployments: DeploymentInfo;
  startedInstances: ProcessInstanceInfo;
  finishedInstances: ProcessInstanceInfo;
  instanceOperations: InstanceOperation;
  variableUpdates: VariableUpdate;
}

/** A row of any feed. */
export type FeedRow = FeedRows[FeedName];

/** Feeds in the order a poll reads them: definitions before instances before tasks, ends last. */
export const FEED_ORDER: readonly FeedName[] = ["deployments", "startedInstances", "tasks", "variableUpdates", "instanceOperations", "finishedTasks", "finishedInstances"];

/** Whether the settings collect what a feed reports (tasks and variable updates are always read). */
export function feedEnabled(settings: Pick<EngineConnectorSettings, "collectProcessDefinitions" | "collectProcessInstances">, feed: FeedName): boolean {
  switch (feed) {
    case "deployments":
      return settings.collectProcessDefinitions;
    case "startedInstances":
    case "finishedInstances":
    case "instanceOperations":
      return settings.collectProcessInstances;
    default:
      return true;
  }
}

/** A task the engine gives no times for sorts first. */
const EPOCH = "1970-01-01T00:00:00.000Z";

const CHANGE_ROWS: { [F in FeedName]: (row: FeedRows[F]) => ChangeRow } = {
  // A task's key includes its version marker: every change of it is a row of its own.
  tasks: (task) => ({ key: `${task.id}@${markerOf(task)}`, time: task.lastUpdated ?? task.createTime ?? EPOCH }),
  finishedTasks: (task) => ({ key: task.id, time: task.endTime }),
  deployments: (deployment) => ({ key: deployment.id, time: deployment.deploymentTime }),
  startedInstances: (instance) => ({ key: instance.id, time: instance.startTime }),
  finishedInstances: (instance) => ({ key: instance.id, time: instance.endTime ?? instance.startTime }),
  instanceOperations: (operation) => ({ key: operation.id, time: operation.time }),
  variableUpdates: (update) => ({ key: update.id, time: update.time }),
};

/** The de-duplication key and change time of a feed's row. */
export function changeRowOf<F extends FeedName>(feed: F, row: FeedRows[F]): ChangeRow {
  const describe: (row: FeedRows[F]) => ChangeRow = CHANGE_ROWS[feed];
  return describe(row);
}

const READERS: { [F in FeedName]: (adapter: EngineAdapter, query: ChangeQuery) => Promise<PageOf<FeedRows[F]>> } = {
  tasks: (adapter, query) => adapter.listTasksChangedSince(query),
  finishedTasks: (adapter, query) => adapter.listFinishedTasksSince(query),
  deployments: (adapter, query) => adapter.listDeploymentsSince(query),
  startedInstances: (adapter, query) => adapter.listInstancesStartedSince(query),
  finishedInstances: (adapter, query) => adapter.listInstancesFinishedSince(query),
  instanceOperations: (adapter, query) => adapter.listInstanceOperationsSince(query),
  variableUpdates: (adapter, query) => adapter.listVariableUpdatesSince(query),
};

/** Reads one page of a feed. */
export function readFeed<F extends FeedName>(adapter: EngineAdapter, feed: F, query: ChangeQuery): Promise<PageOf<FeedRows[F]>> {
  const read: (adapter: EngineAdapter, query: ChangeQuery) => Promise<PageOf<FeedRows[F]>> = READERS[feed];
  return read(adapter, query);
}
