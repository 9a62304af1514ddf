import Agent
import ArgumentParser
import Bundle
import Foundation

/// `care-agent status`: what the running agent is doing and how each device last went.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the agent's state and each device's last result.",
        discussion: "Exit status 0 when every device's last collection was ok or partial and the agent itself is fine; 1 when a device's last collection failed, the last reload failed, a result cannot be read, or uploads have failed for over an hour with bundles waiting; 2 when the agent cannot be reached."
    )

    @Option(help: "The agent's control socket.") var socket: String = "/run/care-agent/control.sock"
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let response: ControlResponse
        do {
            response = try ControlClient.request(socket: socket, ControlRequest(command: "status"))
        } catch {
            Console.error("\(error)")
            throw ExitCode(2)
        }
        guard let status = response.status else {
            Console.error(response.error ?? "no status in the answer")
            throw ExitCode(2)
        }
        if json {
            Console.out(String(decoding: try ResultStore.encoder.encode(status), as: UTF8.self))
        } else {
            Console.out(Self.text(status))
        }
        if status.results.contains(where: { $0.status == .failed }) || !Self.agentProblems(status).isEmpty { throw ExitCode(1) }
    }

    /// What needs an operator besides failed devices, for the exit status a monitoring check
    /// reads: a reload that failed, results that cannot be read, uploads failing for an hour.
    static func agentProblems(_ status: AgentStatus, now: Date = Date()) -> [String] {
        var problems: [String] = []
        if status.reloadError != nil { problems.append("the last reload failed") }
        if !(status.unreadableResults ?? []).isEmpty { problems.append("unreadable results") }
        if let upload = status.upload, upload.url != nil, upload.lastError != nil, upload.pending > 0,
           now.timeIntervalSince(upload.lastSuccess ?? .distantPast) > 3600,
           now.timeIntervalSince(upload.oldestPending ?? now) > 3600 {
            problems.append("uploads failing for over an hour")
        }
        return problems
    }

    /// "none", or "3 (a, b, c)" with at most 10 names.
    static func names(_ list: [String]) -> String {
        if list.isEmpty { return "none" }
        return "\(list.count) (" + list.prefix(10).joined(separator: ", ") + (list.count > 10 ? ", +\(list.count - 10)" : "") + ")"
    }

    static func text(_ status: AgentStatus) -> String {
        let iso = ISO8601DateFormatter()
        var lines = ["configuration: \(status.configuration ?? "-")"]
        if let error = status.reloadError { lines.append("LAST RELOAD FAILED (running the previous configuration): \(error)") }
        lines.append("devices: \(status.devices), being collected: \(Self.names(status.inFlight)), queued: \(status.queued.isEmpty ? "none" : "\(status.queued.count)")")
        lines.append("outbox: \(status.outboxBundles) bundles waiting" + (status.upload?.oldestPending.map { ", the oldest since \(iso.string(from: $0))" } ?? ""))
        if let upload = status.upload {
            if let url = upload.url {
                var line = "upload: to \(url), last success \(upload.lastSuccess.map(iso.string(from:)) ?? "never")"
                if upload.rejected > 0 {
                    line += ", \(upload.rejected) rejected (see <outbox>/rejected/)"
                    if let last = upload.lastRejected { line += ", last rejected \(last)" }
                }
                if let error = upload.lastError {
                    line += ", LAST ATTEMPT FAILED at \(upload.lastAttempt.map(iso.string(from:)) ?? "?"): \(error)"
                    if let next = upload.nextAttempt { line += "; next try \(iso.string(from: next))" }
                }
                lines.append(line)
            } else {
                lines.append("upload: off (no [upload] url in agent.conf); bundles stay in the outbox")
            }
        }
        for source in status.inventory ?? [] {
            var line = "inventory \(source.name) (\(source.type) \(source.location)): \(source.devices) devices"
            line += ", last refresh \(source.lastRefresh.map(iso.string(from:)) ?? "not yet")"
            if source.skippedCount > 0 { line += ", \(source.skippedCount) skipped (care-agent inventory sources shows why)" }
            if let error = source.error {
                line += "; LAST REFRESH FAILED: \(error); "
                line += source.lastSuccess.map { "using the last good inventory of \(iso.string(from: $0))" } ?? "no last good inventory: none of its devices is scheduled"
            } else if source.fromLastGood, let success = source.lastSuccess {
                line += "; using the last good inventory of \(iso.string(from: success)) until the first refresh"
            }
            lines.append(line)
        }
        if let webhook = status.webhook {
            var line = "events webhook: to \(webhook.url), \(webhook.pending) notices waiting, last success \(webhook.lastSuccess.map(iso.string(from:)) ?? "never")"
            if let error = webhook.lastError { line += ", LAST DELIVERY FAILED: \(error)" }
            lines.append(line)
        }
        if let syslog = status.syslog, !syslog.isEmpty { lines.append("syslog: listening on " + syslog.joined(separator: ", ")) }
        for group in status.groups where group.devices > 0 {
            var line = "group \(group.name): \(group.devices) devices, \(group.schedule), last scheduled run \(group.lastRun.map(iso.string(from:)) ?? "not yet")"
            if let requested = group.lastRequestedRun { line += ", last collect now \(iso.string(from: requested))" }
            lines.append(line + ", next run \(group.nextRun.map(iso.string(from:)) ?? "not scheduled")")
        }
        for r in status.results {
            lines.append("  \(r.status.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(r.name) at \(iso.string(from: r.started))"
                + (r.reason.map { ": \($0)" } ?? ""))
        }
        for name in status.notCollected ?? [] { lines.append("  never    \(name): not collected yet") }
        for name in status.unreadableResults ?? [] {
            lines.append("  UNKNOWN  \(name): its last result cannot be read by the agent (a file of another user, left by a run as root?)")
        }
        // Device names, host names and failure reasons come from configuration and devices: each
        // line is escaped, so a device's control characters or newlines cannot reach the terminal.
        return lines.map(TerminalText.escaped).joined(separator: "\n")
    }
}
