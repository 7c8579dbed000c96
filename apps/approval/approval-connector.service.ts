// Service `approvalConnector`: the engine connector of Request Approval (connector.ts) built from the environment,
// so that a node loads it by name (services/index.ts) or by path (`SERVICES=apps/approval/approval-connector.service.ts`).
import { createApprovalConnector } from "./connector.ts";

export default createApprovalConnector();
