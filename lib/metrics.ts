// Prometheus exposition of Moleculer's metrics. The stock reporter always opens its own HTTP port; here the
// port is optional (METRICS_PORT), because the gateway already serves the same text at /metrics.
import { MetricReporters, type MetricRegistry } from "moleculer";

const PrometheusReporter = MetricReporters.Prometheus;

/** Metrics naming the host: hostname, addresses, user, kernel, architecture, command line (install path), pids. */
const HOST_DETAIL = /^(os_hostname|os_type|os_release|os_arch|os_platform|os_user_\w+|os_network_\w+|os_cpu_info_model|process_arguments|process_pid|process_ppid|process_versions_\w+)\b/;
/** The reporter's base class: its `init` sets the reporter up without the HTTP server Prometheus' own opens. */
const BaseReporter: { init(this: InstanceType<typeof PrometheusReporter>, registry: MetricRegistry): void } = Object.getPrototypeOf(PrometheusReporter.prototype);

export class TaskpoolPrometheusReporter extends PrometheusReporter {
  override init(registry: MetricRegistry): void {
    if ((this.opts.port ?? 0) > 0) return super.init(registry);
    BaseReporter.init.call(this, registry);
  }

  override stop(): Promise<void> {
    if (this.server) return super.stop();
    return Promise.resolve();
  }

  /**
   * The Prometheus text of this node's metrics. Without `hostDetails` the metrics that describe the host — its
   * name, addresses, user, kernel, command line and install path — are left out: they are for operators only.
   */
  render(options: { hostDetails?: boolean } = {}): string {
    const text = this.generatePrometheusResponse();
    if (options.hostDetails !== false) return text;
    return text
      .split("\n")
      .filter((line) => !HOST_DETAIL.test(line.startsWith("# ") ? (line.split(" ")[2] ?? "") : line))
      .join("\n");
  }
}
