import Bundle
import Crypto
import Foundation
import Logging
import ServiceLifecycle

/// What `status` shows about uploading. `pending` and `rejected` are counted from the outbox.
public struct UploadStatus: Codable, Sendable, Equatable {
    /// nil: uploading is off.
    public var url: String?
    public var lastAttempt: Date?
    public var lastSuccess: Date?
    /// The last failed attempt's reason; cleared by the next accepted upload.
    public var lastError: String?
    /// When the uploader tries again after a failure.
    public var nextAttempt: Date?
    /// Bundles waiting in the outbox.
    public var pending: Int
    /// Bundles the server refused for good, in `<outbox>/rejected/`.
    public var rejected: Int
    /// The last bundle moved to `rejected/` and why ("NAME: HTTP 400 ..." or "NAME: 5 failed attempts ...").
    public var lastRejected: String?
    /// When the oldest bundle waiting in the outbox was written: how far behind the uploads are.
    public var oldestPending: Date?

    public init(url: String? = nil, lastAttempt: Date? = nil, lastSuccess: Date? = nil, lastError: String? = nil,
                nextAttempt: Date? = nil, pending: Int = 0, rejected: Int = 0, lastRejected: String? = nil) {
        self.url = url
        self.lastAttempt = lastAttempt
        self.lastSuccess = lastSuccess
        self.lastError = lastError
        self.nextAttempt = nextAttempt
        self.pending = pending
        self.rejected = rejected
        self.lastRejected = lastRejected
    }
}

/// How the server answered one bundle.
public enum UploadOutcome: Sendable, Equatable {
    /// 200/201/204: the local file goes. (care-support answers 200 for a bundle it has already.)
    case accepted(status: Int)
    /// Any other 4xx (not 401/403, 404/405/409/410, 408/429): this bundle will never be taken;
    /// it moves to `rejected/`.
    case rejected(status: Int, body: String)
    /// 401/403, 404/405/410, 408, 409, 429, 5xx, TLS or network failure: the bundle stays and is
    /// tried again later.
    case failed(String)

    /// The `result` label of `care_agent_uploads_total`.
    public var result: String {
        switch self {
        case .accepted: return "ok"
        case .rejected: return "rejected"
        case .failed: return "failed"
        }
    }

    /// Classifies an HTTP status.
    static func classify(status: Int, body: String) -> UploadOutcome {
        switch status {
        case 200, 201, 204: return .accepted(status: status)
        // Not stored: care-support's "a different bundle with this id is stored", or WebDAV's
        // "the parent collection does not exist" (every bundle alike). Taking it as "has it
        // already" deleted bundles no one had; it is a failure whose scope the next bundle tells.
        case 409:
            return .failed("HTTP 409 (conflict: the server did not store this bundle): \(body.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200))")
        case 408, 429: return .failed("HTTP \(status) (server busy): \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        // A credential problem refuses every bundle alike: keep them all and retry, so that a
        // rotated or fixed token sends them, instead of moving the whole outbox to rejected/.
        case 401, 403:
            return .failed("HTTP \(status) (check the upload token and client certificate): \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        // No upload endpoint at this url (a typo, a path the server does not have, a plain web
        // server): every bundle alike again, so they stay for the fixed url.
        case 404, 405, 410:
            return .failed("HTTP \(status) (no upload endpoint at this url: check [upload] url): \(body.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200))")
        case 400...499: return .rejected(status: status, body: body)
        default: return .failed("HTTP \(status) from the server: \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}

/// Whom a failed attempt says something about, which decides whether the pass goes on.
enum FailureScope: Equatable {
    /// This bundle only (its file cannot be read): the next bundles are tried; the attempt counts
    /// towards setting the bundle aside.
    case bundle
    /// This bundle cannot be opened for want of permission (a `sudo care-agent collect now
    /// --standalone` left it owned by root): the bundle is fine, so it is skipped without counting
    /// towards setting it aside, and sent once its owner is fixed.
    case permission
    /// A server error (5xx) or a conflict (409): the server may fail on this bundle only, or on
    /// everything. The next bundle tells: accepted, and the failure was this bundle's; such a
    /// failure again, and the pass ends.
    case bundleOrServer
    /// Every bundle would fail alike (network, TLS, proxy, 401/403, 408/429, the token): the pass
    /// ends and the uploader backs off.
    case everything

    static func of(_ outcome: UploadOutcome, status: Int?) -> FailureScope? {
        guard case .failed = outcome else { return nil }
        if let status, status == 409 || (500...599).contains(status) { return .bundleOrServer }
        return .everything
    }

    /// The scope of a local file that could not be opened or read.
    static func ofUnreadable(errno code: Int32) -> FailureScope {
        code == EACCES || code == EPERM ? .permission : .bundle
    }
}

/// Consecutive failed attempts of each bundle that were the bundle's own fault, and the bundles
/// sent to the back of the queue (the first of two server errors in a row: whose fault is not
/// known, but two bad bundles at the head must not hold everything behind them).
final class BundleStrikes: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private var sentBack: Set<String> = []

    func sendBack(_ name: String) { lock.lock(); sentBack.insert(name); lock.unlock() }

    func isSentBack(_ name: String) -> Bool { lock.lock(); defer { lock.unlock() }; return sentBack.contains(name) }

    /// Counts one more failed attempt of `name` and returns the count.
    func add(_ name: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        counts[name, default: 0] += 1
        return counts[name]!
    }

    func clear(_ name: String) { lock.lock(); counts[name] = nil; sentBack.remove(name); lock.unlock() }

    /// Forgets bundles no longer in the outbox (sent, moved away by hand).
    func keep(only names: Set<String>) {
        lock.lock()
        counts = counts.filter { names.contains($0.key) }
        sentBack.formIntersection(names)
        delivered.formIntersection(names)
        lock.unlock()
    }

    func count(_ name: String) -> Int { lock.lock(); defer { lock.unlock() }; return counts[name] ?? 0 }

    /// Bundles the server took that could not be removed (a read-only outbox): never sent again,
    /// only their removal retried, until they are gone.
    private var delivered: Set<String> = []
    func markDelivered(_ name: String) { lock.lock(); delivered.insert(name); lock.unlock() }
    func isDelivered(_ name: String) -> Bool { lock.lock(); defer { lock.unlock() }; return delivered.contains(name) }
    func forgetDelivered(_ name: String) { lock.lock(); delivered.remove(name); lock.unlock() }
}

/// Wakes the uploader early (a collection just wrote bundles). Signals while nobody waits are
/// kept (one is enough), so that none is lost between two waits.
public final class UploadWake: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?

    public init() {}

    public func signal() {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume()
            return
        }
        pending = true
        lock.unlock()
    }

    /// Returns at the signal, after `timeout`, or on cancellation, whichever is first.
    func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            group.addTask { await self.waitForSignal() }
            await group.next()
            group.cancelAll()
            // The signal waiter does not react to cancellation by itself.
            self.resumeWaiter()
        }
    }

    private func waitForSignal() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if pending || Task.isCancelled {
                pending = false
                lock.unlock()
                continuation.resume()
                return
            }
            waiter = continuation
            lock.unlock()
        }
    }

    private func resumeWaiter() {
        lock.lock()
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume()
    }

    /// Whether a signal arrived since the last wait or reset; clears it.
    func take() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let was = pending
        pending = false
        return was
    }

    /// Forgets a signal that arrived while the uploader was busy (it is about to scan anyway).
    func reset() {
        lock.lock()
        pending = false
        lock.unlock()
    }
}

/// Sends finished bundles from the outbox to the support side (`[upload] url`), in the outbox's
/// upload order (event bundles, then on-demand, then scheduled; oldest first within each), one
/// at a time, with HTTP PUT over TLS; a bundle is removed only once the server confirmed it, so
/// nothing is lost across crashes, reboots or outages. Failures are retried with doubling backoff.
public final class Uploader: Service, @unchecked Sendable {
    let runtime: AgentRuntime
    let logger: Logger
    let environment: [String: String]
    private let thread = SerialWorkThread(name: "care-upload")
    private let abort = CurlPut.AbortFlag()
    private let strikes = BundleStrikes()
    /// After this many consecutive failed attempts that were the bundle's own (unreadable, or a
    /// server error while the server took other bundles), it goes to `rejected/` so that it stops
    /// costing an attempt in every pass. Kept in memory: a restart gives a bundle a fresh start.
    public static let maxAttemptsPerBundle = 5

    public init(runtime: AgentRuntime, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.runtime = runtime
        self.logger = logger
        self.environment = environment
    }

    deinit { thread.stop() }

    /// Uploads until graceful shutdown; an upload in progress is aborted then.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await self.loop()
        } onGracefulShutdown: {
            self.abort.raise()
            // Ends an idle wait or a backoff at once instead of after `interval` or the backoff.
            self.runtime.uploadWake.signal()
            self.runtime.reloadWake.signal()
        }
    }

    func loop() async throws {
        let wake = runtime.uploadWake
        var backoff: Duration?
        while !Task.isCancelled && !Task.isShuttingDownGracefully && !abort.isRaised {
            // Before the configuration is read: a reload after this point is seen by the wait.
            wake.reset()
            runtime.reloadWake.reset()
            let configuration = await runtime.configuration
            let settings = configuration.upload
            let outbox = await runtime.outbox
            // Before sending: a bundle the quota drops is not worth an upload slot. Also without
            // a url, so that an agent that never uploads still keeps within its disk budget.
            await runtime.enforceOutboxQuota()
            guard settings.url != nil else {
                await pause(on: wake, for: settings.interval)
                continue
            }
            let pass = await uploadPending(settings: settings, outbox: outbox)
            if pass.failed {
                var delay = backoff.map { min($0 * 2, settings.maxBackoff) } ?? min(settings.retryBackoff, settings.maxBackoff)
                backoff = delay
                // The server's own Retry-After (429, 503) when longer, within max-backoff; and up
                // to 10% more at random, so that agents failed by one outage do not all return at once.
                if let asked = pass.retryAfter { delay = max(delay, min(.seconds(asked), settings.maxBackoff)) }
                delay += delay * Double.random(in: 0..<0.1)
                await runtime.setUploadNextAttempt(Date().addingTimeInterval(delay.seconds))
                logger.info("upload failed, trying again later", metadata: ["in": "\(delay)"])
                if pass.undecided {
                    // One bundle's server error, nothing to compare it with: a new bundle (an
                    // incident's, say) is tried at once, first, and tells whose fault it was.
                    await pause(on: wake, for: delay)
                } else {
                    // Only a reload (the url or credentials fixed) or shutdown ends the backoff
                    // early: a new bundle does not make the server answer.
                    await pause(on: runtime.reloadWake, for: delay)
                }
            } else {
                backoff = nil
                await runtime.setUploadNextAttempt(nil)
                await pause(on: wake, for: settings.interval)
            }
        }
        thread.stop()
    }

    /// Waits `duration` or until `wake` is signalled; not at all once shutdown began (its signal
    /// may have been reset before this wait).
    private func pause(on wake: UploadWake, for duration: Duration) async {
        guard !abort.isRaised else { return }
        await wake.wait(timeout: duration)
    }

    /// The result of one scan of the outbox.
    public struct Pass: Sendable, Equatable {
        public var outcomes: [String: UploadOutcome] = [:]
        /// True when the server or the network failed (every bundle would): the pass stopped
        /// there and the uploader backs off.
        public var failed = false
        /// The pass failed on a server error (or 409) of its last bundle with no bundle taken
        /// before it: whether the server fails on everything or on that bundle is not known, so
        /// a new bundle (a collection's wake) ends the backoff early to tell.
        public var undecided = false
        /// Bundles moved to `rejected/` in this pass after ``Uploader/maxAttemptsPerBundle`` failures.
        public var setAside: [String] = []
        /// The longest `Retry-After` (seconds) a server error or 429 of this pass asked for.
        public var retryAfter: Int?
    }

    /// Sends every finished bundle in the outbox directory `outbox`; see ``uploadPending(settings:outbox:)-(_,FileOutbox)``.
    public func uploadPending(settings: UploadSettings, outbox: String) async -> Pass {
        await uploadPending(settings: settings, outbox: FileOutbox(directory: outbox, keepsSent: settings.keepSent))
    }

    /// Sends every finished bundle in `outbox`, in its upload order: event bundles first, then
    /// on-demand, then scheduled, oldest first within each. A failure of one bundle (its file,
    /// or a server error the next bundle shows to be its own) does not stop the pass; a failure
    /// every bundle would meet (network, TLS, credentials, a server error twice in a row) does.
    public func uploadPending(settings: UploadSettings, outbox: FileOutbox) async -> Pass {
        var pass = Pass()
        let entries = outbox.pending()
        strikes.keep(only: Set(entries.map(\.name)))
        var pending = order(entries)
        var index = 0
        var tried = Set<String>()
        var taken = false, accepted = false, discerning = false
        var stopped = false
        // A bundle that met a server error, until the next attempt says whose fault it was;
        // `transient` for "busy, try later" (502, 503, 504), which never counts against it.
        var suspect: (name: String, reason: String, transient: Bool)?
        // A bundle refused for good (4xx) before the server took anything in this pass: an
        // intake older than the agent or a proxy refuses every bundle alike, and must not empty
        // the outbox into rejected/; the next answer tells.
        var refusal: (name: String, status: Int, body: String)?
        scan: while index < pending.count {
            let name = pending[index]
            index += 1
            if abort.isRaised { stopped = true; break }
            // A collection finished meanwhile (an incident's bundle, say): it goes next in its
            // place in the order, not after the rest of a backlog that can take hours.
            if index > 1, runtime.uploadWake.take() {
                let now = outbox.pending(), known = Set(pending)
                if now.contains(where: { !tried.contains($0.name) && !known.contains($0.name) }) {
                    pending = order(now).filter { !tried.contains($0) }
                    index = 0
                    continue
                }
            }
            if !tried.insert(name).inserted { continue }
            if strikes.isDelivered(name) {
                // Taken by the server already; only its removal failed. Never sent again.
                if (try? outbox.accept(name)) != nil || !FileManager.default.fileExists(atPath: outbox.path(of: name)) {
                    strikes.forgetDelivered(name)
                    logger.info("delivered bundle removed from the outbox at last", metadata: ["bundle": "\(name)"])
                } else {
                    pass.failed = true  // the outbox still cannot be written: back off
                }
                continue
            }
            let result = await attempt(name: name, outbox: outbox, settings: settings, settlesRefusal: false)
            let (outcome, scope) = (result.outcome, result.scope)
            pass.outcomes[name] = outcome
            if let asked = result.retryAfter { pass.retryAfter = max(pass.retryAfter ?? 0, asked) }
            if result.notRemoved {
                // The outbox cannot be written: sending more would only send them again later.
                pass.failed = true
                stopped = true
                break scan
            }
            let reason: String
            if case let .failed(text) = outcome { reason = text } else { reason = "" }
            switch scope {
            case nil:
                taken = true
                if case let .rejected(status, body) = outcome {
                    if accepted || discerning {
                        await settleRefusal(name, status: status, body: body, outbox: outbox, url: settings.url)
                    } else if let first = refusal, first.status == status,
                              first.body.trimmingCharacters(in: .whitespacesAndNewlines) == body.trimmingCharacters(in: .whitespacesAndNewlines) {
                        // Two bundles refused alike (status and body) and none taken: the server refuses everything.
                        logger.error("the server refuses every bundle alike; they are kept until it is fixed", metadata: [
                            "status": "\(status)", "body": "\(body.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200))",
                        ])
                        strikes.sendBack(first.name)
                        refusal = nil
                        await recordKept(status: status, body: body, url: settings.url)
                        await recordKept(status: first.status, body: first.body, url: settings.url)
                        pass.failed = true
                        stopped = true
                        break scan
                    } else if let first = refusal {
                        // Refused for different reasons: the server judges each bundle on its own.
                        discerning = true
                        await settleRefusal(first.name, status: first.status, body: first.body, outbox: outbox, url: settings.url)
                        await settleRefusal(name, status: status, body: body, outbox: outbox, url: settings.url)
                        refusal = nil
                    } else {
                        refusal = (name, status, body)
                    }
                } else {
                    accepted = true
                    if let first = refusal {
                        await settleRefusal(first.name, status: first.status, body: first.body, outbox: outbox, url: settings.url)
                        refusal = nil
                    }
                }
                // The server answered this one: the suspect's server error was its own.
                if let previous = suspect {
                    if previous.transient {
                        strikes.sendBack(previous.name)
                    } else {
                        await strike(previous.name, reason: previous.reason, outbox: outbox, settings: settings, pass: &pass)
                    }
                    suspect = nil
                }
            case .bundle:
                await strike(name, reason: reason, outbox: outbox, settings: settings, pass: &pass)
            case .permission:
                logger.warning("bundle not readable by the agent; skipped until its owner or mode is fixed (chown care-agent:care-agent, chmod 0640)",
                               metadata: ["bundle": "\(name)", "error": "\(reason)"])
            case .bundleOrServer:
                if let first = suspect {
                    // The server, or two bad bundles in a row: the first goes to the back of the
                    // next passes, so that a bad pair cannot start every pass and hold the
                    // bundles behind it until outbox-max-age removes them unsent.
                    strikes.sendBack(first.name)
                    pass.failed = true
                    stopped = true
                    break scan
                }
                suspect = (name, reason, result.transient)
            case .everything:
                pass.failed = true
                stopped = true
                break scan
            }
        }
        // Only a pass that went through its bundles can say the last failure was that bundle's
        // own: one that stopped (the failure twice, the network, shutdown) says nothing of it.
        if let kept = refusal {
            // Refused, and nothing taken to compare with (or the pass stopped first): kept; a new
            // bundle tells.
            await recordKept(status: kept.status, body: kept.body, url: settings.url)
            if !stopped {
                pass.failed = true
                pass.undecided = true
            }
        }
        if !stopped, let last = suspect {
            if taken {
                // The server took a bundle in this pass: the last one's failure is its own.
                if last.transient { strikes.sendBack(last.name) } else {
                    await strike(last.name, reason: last.reason, outbox: outbox, settings: settings, pass: &pass)
                }
            } else {
                // Nothing to compare it with: maybe the server is down; back off.
                pass.failed = true
                pass.undecided = true
            }
        }
        return pass
    }

    /// The order of a pass. Bundles that failed on their own before go after the others (stable:
    /// the upload order stands among each): a poison bundle does not make every pass start with a
    /// failure, and the bundles after it show whose fault its next failure is. Within its rank
    /// (incidents stay first), a bundle sent back after ending a pass goes last.
    private func order(_ entries: [OutboxEntry]) -> [String] {
        let fresh = entries.enumerated().filter { strikes.count($0.element.name) == 0 }
        let ordered = fresh.sorted { a, b in
            let backA = strikes.isSentBack(a.element.name), backB = strikes.isSentBack(b.element.name)
            if a.element.uploadRank != b.element.uploadRank { return a.element.uploadRank < b.element.uploadRank }
            if backA != backB { return !backA }
            return a.offset < b.offset
        }
        return ordered.map(\.element.name) + entries.filter { strikes.count($0.name) > 0 }.map(\.name)
    }

    /// Counts a failed attempt against `name`; at ``maxAttemptsPerBundle`` the bundle moves to `rejected/`.
    private func strike(_ name: String, reason: String, outbox: FileOutbox, settings: UploadSettings, pass: inout Pass) async {
        let count = strikes.add(name)
        guard count >= Self.maxAttemptsPerBundle else {
            logger.notice("bundle failed on its own, the next ones are sent", metadata: [
                "bundle": "\(name)", "attempts": "\(count)", "limit": "\(Self.maxAttemptsPerBundle)", "error": "\(reason)",
            ])
            return
        }
        let why = "\(count) failed attempts in a row while other bundles went through; last: \(reason)"
        do {
            try outbox.reject(name)
        } catch {
            logger.error("cannot move the failing bundle to rejected/", metadata: ["bundle": "\(name)", "error": "\(error)"])
            return
        }
        strikes.clear(name)
        pass.setAside.append(name)
        logger.error("bundle moved to rejected/ after repeated failures", metadata: [
            "bundle": "\(name)", "attempts": "\(count)", "error": "\(reason)",
        ])
        await runtime.recordRejected(name, why: why)
    }

    /// Uploads one bundle and settles its file: removed (or moved to sent/) when accepted, moved
    /// to rejected/ when refused for good, kept when the attempt failed.
    func upload(name: String, outbox: FileOutbox, settings: UploadSettings) async -> UploadOutcome {
        await attempt(name: name, outbox: outbox, settings: settings).outcome
    }

    /// One attempt's outcome, and what the pass needs to know of it.
    struct Attempt {
        var outcome: UploadOutcome
        /// How far a failure reaches (nil when not failed).
        var scope: FailureScope?
        /// A 502, 503 or 504: busy, never the bundle's fault.
        var transient = false
        var retryAfter: Int?
        /// Accepted, and the file could not be removed (or moved to sent/).
        var notRemoved = false
    }

    /// ``upload(name:outbox:settings:)``, with how far a failure reaches. `settlesRefusal`:
    /// a bundle refused for good moves to rejected/ at once (else the caller decides).
    func attempt(name: String, outbox: FileOutbox, settings: UploadSettings, settlesRefusal: Bool = true) async -> Attempt {
        let path = outbox.path(of: name)
        let started = Date()
        var outcome: UploadOutcome
        var scope: FailureScope?
        var transient = false, retryAfter: Int?, notRemoved = false
        do {
            let file = try Self.read(path)
            do {
                let request = try makeRequest(name: name, path: path, file: file, settings: settings)
                let abort = self.abort
                let response = await thread.run { CurlPut.perform(request, abort: abort) }
                switch response {
                case let .http(status, body, asked):
                    outcome = UploadOutcome.classify(status: status, body: body)
                    scope = FailureScope.of(outcome, status: status)
                    transient = (502...504).contains(status)
                    if outcome.isFailure { retryAfter = asked }
                case let .failed(reason):
                    outcome = .failed(reason)
                    scope = .everything
                case let .timedOutSending(reason):
                    // A bundle too large for the link within `timeout` would otherwise end every
                    // pass, first in line, and nothing behind it would ever go.
                    outcome = .failed("\(reason) (while sending the bundle: larger than [upload] timeout allows on this link?)")
                    scope = .bundleOrServer
                case let .cutOffSending(reason):
                    outcome = .failed("\(reason) (the connection broke once the bundle was being sent: a server or proxy failing on this bundle?)")
                    scope = .bundleOrServer
                case let .unreadable(reason, code):
                    outcome = .failed(reason)
                    scope = FailureScope.ofUnreadable(errno: code)
                }
            } catch {
                // The url or the token: the same for every bundle.
                outcome = .failed(error.description)
                scope = .everything
            }
        } catch {
            outcome = .failed(error.description)
            scope = error.errno.map { FailureScope.ofUnreadable(errno: $0) } ?? .bundle
        }
        switch outcome {
        case let .accepted(status):
            do {
                try outbox.accept(name)
                logger.info("bundle uploaded", metadata: ["bundle": "\(name)", "status": "\(status)"])
            } catch where !FileManager.default.fileExists(atPath: outbox.path(of: name)) {
                // The quota dropped it while it was being sent (a collection finished meanwhile).
                logger.info("bundle uploaded; it had left the outbox meanwhile (the quota)", metadata: ["bundle": "\(name)", "status": "\(status)"])
            } catch {
                // Sent, but still here: remembered so that it is not sent again (only its removal
                // is retried), and the pass ends: the outbox cannot be written.
                strikes.markDelivered(name)
                notRemoved = true
                logger.error("bundle uploaded but not removed from the outbox: check the outbox's file system and permissions",
                             metadata: ["bundle": "\(name)", "error": "\(error)"])
            }
        case let .rejected(status, body):
            if settlesRefusal { await settleRefusal(name, status: status, body: body, outbox: outbox, url: settings.url, records: false) }
        case let .failed(reason):
            logger.warning("bundle not uploaded", metadata: ["bundle": "\(name)", "error": "\(reason)"])
        }
        // A refusal the pass decides on is recorded once decided (moved, or kept as the server's).
        let decidedLater: Bool
        if case .rejected = outcome { decidedLater = !settlesRefusal } else { decidedLater = false }
        if !decidedLater { await runtime.recordUpload(outcome, url: settings.url, at: started) }
        return Attempt(outcome: outcome, scope: scope, transient: transient, retryAfter: retryAfter, notRemoved: notRemoved)
    }

    /// Records refusals the pass kept (the server refusing every bundle alike, or one refused
    /// with nothing to compare): a failed attempt, not a bundle moved to rejected/.
    private func recordKept(status: Int, body: String, url: String?) async {
        await runtime.recordUpload(.failed("HTTP \(status) (kept: the server refuses bundles alike, or nothing it took tells otherwise): "
                                           + body.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200)), url: url)
    }

    /// Moves a bundle the server refused for good to rejected/.
    /// `records`: counts the refusal against `url` (false when the attempt already did).
    private func settleRefusal(_ name: String, status: Int, body: String, outbox: FileOutbox, url: String?, records: Bool = true) async {
        if records { await runtime.recordUpload(.rejected(status: status, body: body), url: url) }
        logger.error("the server refused the bundle; moved to rejected/", metadata: [
            "bundle": "\(name)", "status": "\(status)", "body": "\(body.trimmingCharacters(in: .whitespacesAndNewlines))",
        ])
        do {
            try outbox.reject(name)
            await runtime.recordRejected(name, why: "HTTP \(status): \(body.prefix(200).trimmingCharacters(in: .whitespacesAndNewlines))")
        } catch {
            logger.error("cannot move the refused bundle", metadata: ["bundle": "\(name)", "error": "\(error)"])
        }
    }

    /// The size and SHA-256 of a bundle file.
    /// Read with the system calls, not Foundation, for their `errno`: a bundle the agent may not
    /// open (EACCES) is skipped until its owner is fixed, a damaged one counts against itself.
    static func read(_ path: String) throws(UploadError) -> (size: Int64, digest: String) {
        func failure(_ code: Int32) -> UploadError {
            UploadError("cannot read \(path): \(String(cString: strerror(code)))", errno: code)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(errno) }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var size: Int64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else {
                if errno == EINTR { continue }
                throw failure(errno)
            }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            size += Int64(n)
        }
        return (size, hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }

    func makeRequest(name: String, path: String, file: (size: Int64, digest: String), settings: UploadSettings) throws(UploadError) -> CurlPut.Request {
        guard let url = settings.url else { throw UploadError("no [upload] url configured") }
        let size = file.size
        var headers = [
            "Content-Type: application/gzip",
            "X-Care-Bundle-SHA256: \(file.digest)",
            // A server answering 100-continue slowly would otherwise delay every upload by a second.
            "Expect:",
        ]
        if let token = try settings.token(environment: environment) {
            guard !token.isEmpty, !token.contains(where: { $0.isNewline }) else {
                throw UploadError("the upload token is empty")
            }
            headers.append("Authorization: Bearer \(token)")
        }
        if let clientKey = settings.clientKey {
            do { try SecretFile.checkPermissions(clientKey, what: "TLS client key file") } catch { throw UploadError("\(error)") }
        }
        let escaped = name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name
        return CurlPut.Request(url: url + escaped, file: path, size: size, headers: headers, caFile: settings.caFile,
                               clientCertificate: settings.clientCertificate, clientKey: settings.clientKey, proxy: settings.proxy,
                               proxyCredentials: try settings.proxyCredentials(), timeout: settings.timeout, allowPlainHTTP: url.lowercased().hasPrefix("http://"))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
