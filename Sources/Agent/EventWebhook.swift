import Bundle
import Foundation
import Logging
import ServiceLifecycle

/// The JSON document POSTed to `[events] webhook` for each event bundle: enough for a ticketing
/// system or the support intake to open a case (device, event, when, which bundle holds the
/// evidence). Field names are a contract.
public struct EventNotice: Codable, Sendable, Equatable {
    /// The agent's `agent-id` (whose customer this is, on the support side).
    public var agent: String
    /// The device's name in the agent's inventory.
    public var device: String
    /// Event kind (`fru-offline`, `core-dump`, `alarm`, ...).
    public var kind: String
    /// `poll` or `syslog`.
    public var source: String
    /// When the agent noticed it (UTC, ISO 8601).
    public var time: Date
    /// The bundle's file name, as uploaded to `[upload] url`.
    public var bundle: String
    /// The bundle id of its manifest: the id the support intake stores it (and its case) under.
    public var bundleID: UUID?
    /// A summary of the evidence (at most ``maximumEvidence`` characters).
    public var evidence: String

    public static let maximumEvidence = 2000

    enum CodingKeys: String, CodingKey {
        case agent, device, kind, source, time, bundle, bundleID = "bundle_id", evidence
    }

    public init(agent: String, device: String, kind: String, source: String, time: Date, bundle: String, bundleID: UUID? = nil, evidence: String) {
        self.bundleID = bundleID
        self.agent = agent
        self.device = device
        self.kind = kind
        self.source = source
        self.time = time
        self.bundle = bundle
        self.evidence = evidence
    }

    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// What `status` shows about the `[events] webhook`.
public struct WebhookStatus: Codable, Sendable, Equatable {
    public var url: String
    /// Notices queued in `<state-directory>/webhook/`.
    public var pending: Int
    public var lastSuccess: Date?
    /// The last failed delivery's reason; cleared by the next delivered notice.
    public var lastError: String?

    public init(url: String, pending: Int, lastSuccess: Date? = nil, lastError: String? = nil) {
        self.url = url
        self.pending = pending
        self.lastSuccess = lastSuccess
        self.lastError = lastError
    }
}

/// Event notices waiting for the webhook, one file each in `<state-directory>/webhook/`, so that
/// they survive a restart and an outage of the receiver (store and forward, like the outbox).
/// Written atomically (a temporary name, then rename), sent oldest first; a notice the receiver
/// refuses for good moves to `rejected/`. At most ``maximumNotices`` wait: past that the oldest
/// go (each logged by the sender).
public struct WebhookQueue: Sendable {
    public let directory: String
    public static let maximumNotices = 10_000

    public init(stateDirectory: String) { directory = stateDirectory + "/webhook" }

    /// Queues `notice`; returns its file name.
    @discardableResult
    public func add(_ notice: EventNotice) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        let stamp = String(format: "%014.3f", notice.time.timeIntervalSince1970)
        let name = "\(stamp)-\(UUID().uuidString.lowercased()).json"
        // One atomic write to the final name, the directory fsynced: a notice is queued, or not at
        // all (two renames, neither made durable, could leave it under its temporary name, which
        // is never sent, or lose it in a power cut).
        try writeAtomically(Array(try EventNotice.encoder().encode(notice)), to: directory + "/" + name, mode: 0o640,
                            what: "webhook notice", durable: true)
        return name
    }

    /// Notices waiting, oldest first (temporary files of an interrupted write are not notices).
    public func pending() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
    }

    public func path(of name: String) -> String { directory + "/" + name }

    /// `url` as status and logs show it: scheme, host and port. Chat webhooks (Slack, Teams) carry
    /// their secret in the path, which would otherwise be on every failed delivery's log line.
    public static func displayURL(_ url: String) -> String {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme, let host = parts.host else { return "(webhook url)" }
        let port = parts.port.map { ":\($0)" } ?? ""
        let rest = parts.path.isEmpty || parts.path == "/" ? (parts.query == nil ? "" : "/…") : "/…"
        return "\(scheme)://\(host)\(port)\(rest)"
    }

    /// The receiver has it: removed, and the removal made durable (a notice back after a power
    /// cut would be sent twice).
    public func accept(_ name: String) throws {
        try FileManager.default.removeItem(atPath: path(of: name))
        FileOutbox.syncDirectory(directory)
    }

    /// Notices kept in `rejected/` at most: a receiver refusing every notice (a wrong url, an
    /// expired token) would otherwise fill the state directory over the months.
    public static let maximumRejected = 1_000

    /// Refused for good: kept aside for the operator, the newest ``maximumRejected`` of them (the
    /// names sort by time). Returns the names of the older ones removed to make room.
    @discardableResult
    public func reject(_ name: String) throws -> [String] {
        let rejected = directory + "/rejected"
        try FileManager.default.createDirectory(atPath: rejected, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        try FileManager.default.moveItem(atPath: path(of: name), toPath: rejected + "/" + name)
        let kept = ((try? FileManager.default.contentsOfDirectory(atPath: rejected)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
        let removed = Array(kept.prefix(max(0, kept.count - Self.maximumRejected)))
        for old in removed { unlink(rejected + "/" + old) }
        FileOutbox.syncDirectory(rejected)
        FileOutbox.syncDirectory(directory)
        return removed
    }

    /// Drops the oldest beyond ``maximumNotices``; returns their names.
    func trim() -> [String] {
        let all = pending()
        guard all.count > Self.maximumNotices else { return [] }
        let dropped = Array(all.prefix(all.count - Self.maximumNotices))
        for name in dropped { unlink(path(of: name)) }
        return dropped
    }
}

/// Sends queued ``EventNotice``s to `[events] webhook` with HTTP POST, over `[upload]`'s TLS
/// (ca-file, client certificate), proxy and bearer token; a notice goes only once the receiver
/// answered 2xx (or 409: it has it already). Failures (network, TLS, 408, 429, 5xx, 401/403)
/// keep every notice and back off, doubling from `[upload] retry-backoff` up to `max-backoff`;
/// another 4xx moves that notice to `rejected/`.
public final class WebhookSender: Service, @unchecked Sendable {
    let runtime: AgentRuntime
    let logger: Logger
    let environment: [String: String]
    private let thread = SerialWorkThread(name: "care-webhook")
    private let abort = CurlPut.AbortFlag()
    /// Server errors each notice met that the notice after it showed to be its own (that one was
    /// delivered): a notice the receiver always fails on goes last, then to `rejected/`.
    private let strikes = BundleStrikes()
    /// Server errors in a row a notice may meet before it is set aside.
    static let maximumAttempts = 5

    public init(runtime: AgentRuntime, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.runtime = runtime
        self.logger = logger
        self.environment = environment
    }

    deinit { thread.stop() }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.loop()
        } onGracefulShutdown: {
            self.abort.raise()
            self.runtime.webhookWake.signal()
        }
        thread.stop()
    }

    func loop() async {
        let wake = runtime.webhookWake
        var backoff: Duration?
        while !Task.isCancelled && !Task.isShuttingDownGracefully && !abort.isRaised {
            let configuration = await runtime.configuration
            wake.reset()
            guard let url = configuration.events.webhook else {
                await wake.wait(timeout: .seconds(60))
                continue
            }
            let queue = WebhookQueue(stateDirectory: configuration.agent.stateDirectory)
            for name in queue.trim() {
                logger.error("webhook queue full: oldest event notice dropped", metadata: ["notice": "\(name)", "limit": "\(WebhookQueue.maximumNotices)"])
            }
            let failed = await sendPending(url: url, settings: configuration.events.delivery(over: configuration.upload), queue: queue)
            if failed {
                let settings = configuration.upload
                let delay = backoff.map { min($0 * 2, settings.maxBackoff) } ?? min(settings.retryBackoff, settings.maxBackoff)
                backoff = delay
                logger.info("webhook delivery failed, trying again later", metadata: ["in": "\(delay)"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } else {
                backoff = nil
                await wake.wait(timeout: configuration.upload.interval)
            }
        }
    }

    /// Posts every queued notice, oldest first; true when a failure ended the pass.
    func sendPending(url: String, settings: UploadSettings, queue: WebhookQueue) async -> Bool {
        var pending = queue.pending()
        strikes.keep(only: Set(pending))
        // Notices the receiver failed on before go after the others: one it always fails on
        // must not start, and end, every pass.
        pending = pending.filter { strikes.count($0) == 0 } + pending.filter { strikes.count($0) > 0 }
        if pending.isEmpty { await runtime.recordWebhook(nil, pending: 0) }
        // A notice that met a server error, until the next one says whose fault it was.
        var suspect: (name: String, reason: String)?
        var delivered = false
        for (index, name) in pending.enumerated() {
            if abort.isRaised { return true }
            let outcome = await post(name: name, url: url, settings: settings, queue: queue)
            switch outcome {
            case .accepted:
                do { try queue.accept(name) } catch {
                    logger.error("event notice delivered but not removed from the queue", metadata: ["notice": "\(name)", "error": "\(error)"])
                }
                logger.info("event notice delivered to the webhook", metadata: ["notice": "\(name)"])
            case let .rejected(status, body):
                logger.error("the webhook refused the event notice; moved to webhook/rejected/", metadata: [
                    "notice": "\(name)", "status": "\(status)", "body": "\(body.trimmingCharacters(in: .whitespacesAndNewlines))",
                ])
                setAside(name, queue: queue)
            case let .failed(reason):
                logger.warning("event notice not delivered", metadata: ["notice": "\(name)", "url": "\(WebhookQueue.displayURL(url))", "error": "\(reason)"])
            }
            if case .accepted = outcome { delivered = true }
            if case .failed = outcome {} else if let previous = suspect {
                // The receiver took (or refused) this one: the earlier server error was that notice's own.
                strike(previous.name, reason: previous.reason, queue: queue)
                suspect = nil
            }
            await runtime.recordWebhook(outcome, pending: pending.count - index - (outcome.isFailure ? 0 : 1))
            if case let .failed(reason) = outcome {
                // A server error may be this notice's alone: the next one tells. Anything else
                // (network, TLS, credentials) or a second one in a row ends the pass.
                guard reason.hasPrefix("HTTP 5"), suspect == nil else { return true }
                suspect = (name, reason)
            }
        }
        // A server error at the end: the notice's own if the receiver took others in this pass
        // (it goes last, so this is how a notice it always fails on is found); else back off.
        if let last = suspect {
            guard delivered else { return true }
            strike(last.name, reason: last.reason, queue: queue)
        }
        return false
    }

    /// One more server error that was `name`'s own; after ``maximumAttempts`` it is set aside.
    private func strike(_ name: String, reason: String, queue: WebhookQueue) {
        let count = strikes.add(name)
        guard count >= Self.maximumAttempts else { return }
        logger.error("event notice moved to webhook/rejected/ after repeated failures", metadata: [
            "notice": "\(name)", "attempts": "\(count)", "error": "\(reason)",
        ])
        setAside(name, queue: queue)
        strikes.clear(name)
    }

    private func setAside(_ name: String, queue: WebhookQueue) {
        do {
            let removed = try queue.reject(name)
            if !removed.isEmpty {
                logger.warning("webhook/rejected/ full: oldest refused notices removed", metadata: [
                    "notices": "\(removed.count)", "limit": "\(WebhookQueue.maximumRejected)",
                ])
            }
        } catch {
            logger.error("cannot move the refused event notice", metadata: ["notice": "\(name)", "error": "\(error)"])
        }
    }

    private func post(name: String, url: String, settings: UploadSettings, queue: WebhookQueue) async -> UploadOutcome {
        let path = queue.path(of: name)
        var info = stat()
        guard stat(path, &info) == 0 else { return .rejected(status: 0, body: "cannot read \(path): \(String(cString: strerror(errno)))") }
        var headers = ["Content-Type: application/json", "Expect:"]
        let proxyCredentials: String?
        do {
            proxyCredentials = try settings.proxyCredentials()
            if let token = try settings.token(environment: environment) {
                guard !token.isEmpty, !token.contains(where: { $0.isNewline }) else { return .failed("the webhook's token is empty") }
                headers.append("Authorization: Bearer \(token)")
            }
            if let clientKey = settings.clientKey { try SecretFile.checkPermissions(clientKey, what: "TLS client key file") }
        } catch {
            return .failed("\(error)")
        }
        let request = CurlPut.Request(url: url, file: path, size: Int64(info.st_size), headers: headers, caFile: settings.caFile,
                                      clientCertificate: settings.clientCertificate, clientKey: settings.clientKey, proxy: settings.proxy,
                                      proxyCredentials: proxyCredentials, timeout: settings.timeout,
                                      allowPlainHTTP: url.lowercased().hasPrefix("http://"), post: true)
        let abort = self.abort
        switch await thread.run({ CurlPut.perform(request, abort: abort) }) {
        // A webhook receiver that answers 409 has the notice (its id seen before: a resend after
        // an answer lost to a timeout or a crash). For bundles 409 means the opposite.
        case .http(409, _, _): return .accepted(status: 409)
        case let .http(status, body, _): return UploadOutcome.classify(status: status, body: body)
        case let .failed(reason), let .timedOutSending(reason), let .cutOffSending(reason): return .failed(reason)
        case let .unreadable(reason, _): return .rejected(status: 0, body: reason)
        }
    }
}

extension UploadOutcome {
    var isFailure: Bool { if case .failed = self { return true } else { return false } }
}
