// Prometheus exposition of Moleculer's metrics. The stock reporter always opens its own HTTP port; here the
// port is optional (METRICS_PORT), because the gateway already serves the same text at /metrics.
import { MetricReporters } from "moleculer";

const PrometheusReporter = MetricReporters.Prometheus;
const BaseReporter = Object.getPrototypeOf(PrometheusReporter.prototype);

export class TaskpoolPrometheusReporter extends PrometheusReporter {
  override init(registry: any): void {
    if ((this as any).opts.port > 0) return super.init(registry);
    BaseReporter.init.call(this, registry);
  }

  override stop(): Promise<void> {
    if ((this as any).server) return super.stop();
    return Promise.resolve();
  }

  /** The Prometheus text of this node's metrics. */
  render(): string {
    return (this as any).generatePrometheusResponse();
  }
}
