import Foundation
import Logging
import ServiceLifecycle

/// Reads every `[inventory NAME]` source when the agent starts, then each again when its
/// `refresh` interval has passed (SIGHUP reads them all through ``AgentRuntime/reload()``).
public struct InventoryRefresher: Service {
    let runtime: AgentRuntime
    let logger: Logger
    /// The longest sleep before looking again (a reload may add sources or shorten intervals).
    let recheck: Duration

    public init(runtime: AgentRuntime, logger: Logger, recheck: Duration = .seconds(30)) {
        self.runtime = runtime
        self.logger = logger
        self.recheck = recheck
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                await runtime.refreshInventory(force: true)
                while !Task.isCancelled {
                    let next = await runtime.nextInventoryRefresh()
                    let wait = min(recheck.seconds, max(0.05, next.map { $0.timeIntervalSinceNow } ?? recheck.seconds))
                    try await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
                    await runtime.refreshInventory(force: false)
                }
            }
        } catch is CancellationError {}
    }
}
