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

    public init(url: String? = nil, lastAttempt: Date? = nil, lastSuccess: Date? = nil, lastError: String? = nil,
                nextAttempt: Date? = nil, pending: Int = 0, rejected: Int = 0) {
        self.url = url
        self.lastAttempt = lastAttempt
        self.lastSuccess = lastSuccess
        self.lastError = lastError
        self.nextAttempt = nextAttempt
        self.pending = pending
        self.rejected = rejected
    }
}

/// How the server answered one bundle.
public enum UploadOutcome: Sendable, Equatable {
    /// 200/201/204, or 409 (the server has it already): the local file goes.
    case accepted(status: Int)
    /// Any other 4xx but 408/429: this bundle will never be taken; it moves to `rejected/`.
    case rejected(status: Int, body: String)
    /// 408, 429, 5xx, TLS or network failure: the bundle stays and is tried again later.
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
        case 200, 201, 204, 409: return .accepted(status: status)
        case 408, 429: return .failed("HTTP \(status) (server busy): \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        // A credential problem refuses every bundle alike: keep them all and retry, so that a
        // rotated or fixed token sends them, instead of moving the whole outbox to rejected/.
        case 401, 403:
            return .failed("HTTP \(status) (check the upload token and client certificate): \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        case 400...499: return .rejected(status: status, body: body)
        default: return .failed("HTTP \(status) from the server: \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
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

    /// Forgets a signal that arrived while the uploader was busy (it is about to scan anyway).
    func reset() {
        lock.lock()
        pending = false
        lock.unlock()
    }
}

/// Sends finished bundles from the outbox to the support side (`[upload] url`), oldest first, one
/// at a time, with HTTP PUT over TLS; a bundle is removed only once the server confirmed it, so
/// nothing is lost across crashes, reboots or outages. Failures are retried with doubling backoff.
public final class Uploader: Service, @unchecked Sendable {
    let runtime: AgentRuntime
    let logger: Logger
    let environment: [String: String]
    private let thread = TransferThread()
    private let abort = CurlPut.AbortFlag()

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
            // Ends an idle wait at once instead of after `interval`.
            self.runtime.uploadWake.signal()
        }
    }

    func loop() async throws {
        let wake = runtime.uploadWake
        var backoff: Duration?
        while !Task.isCancelled && !Task.isShuttingDownGracefully && !abort.isRaised {
            let configuration = await runtime.configuration
            let settings = configuration.upload
            wake.reset()
            guard settings.url != nil else {
                await wake.wait(timeout: settings.interval)
                continue
            }
            let pass = await uploadPending(settings: settings, outbox: configuration.agent.outbox)
            if pass.failed {
                let delay = backoff.map { min($0 * 2, settings.maxBackoff) } ?? min(settings.retryBackoff, settings.maxBackoff)
                backoff = delay
                await runtime.setUploadNextAttempt(Date().addingTimeInterval(delay.seconds))
                logger.info("upload failed, trying again later", metadata: ["in": "\(delay)"])
                // Only shutdown ends the backoff early: a new bundle does not make the server answer.
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } else {
                backoff = nil
                await runtime.setUploadNextAttempt(nil)
                await wake.wait(timeout: settings.interval)
            }
        }
        thread.stop()
    }

    /// The result of one scan of the outbox.
    public struct Pass: Sendable, Equatable {
        public var outcomes: [String: UploadOutcome] = [:]
        /// True when a bundle could not be sent; the pass stopped there (oldest first).
        public var failed = false
    }

    /// Sends every finished bundle in `outbox`, oldest first, until one fails.
    public func uploadPending(settings: UploadSettings, outbox: String) async -> Pass {
        var pass = Pass()
        for name in Self.pendingBundles(outbox) {
            if abort.isRaised { break }
            let outcome = await upload(name: name, outbox: outbox, settings: settings)
            pass.outcomes[name] = outcome
            if case .failed = outcome {
                pass.failed = true
                break
            }
        }
        return pass
    }

    /// Finished bundles in `outbox`, oldest first (modification time, then name). In-progress
    /// writes (`.…tmp`) and the sent/ and rejected/ folders are never included.
    public static func pendingBundles(_ outbox: String) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []).filter(BundleFileName.isBundle)
        let dated: [(String, Double)] = names.compactMap { name in
            var info = stat()
            guard stat(outbox + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
            return (name, Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        }
        return dated.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.map(\.0)
    }

    /// Uploads one bundle and settles its file: removed (or moved to sent/) when accepted, moved
    /// to rejected/ when refused for good, kept when the attempt failed.
    func upload(name: String, outbox: String, settings: UploadSettings) async -> UploadOutcome {
        let path = outbox + "/" + name
        let started = Date()
        var outcome: UploadOutcome
        do {
            let request = try makeRequest(name: name, path: path, settings: settings)
            let abort = self.abort
            let response = await thread.run { CurlPut.perform(request, abort: abort) }
            switch response {
            case let .http(status, body): outcome = UploadOutcome.classify(status: status, body: body)
            case let .failed(reason): outcome = .failed(reason)
            }
        } catch {
            outcome = .failed(error.description)
        }
        switch outcome {
        case let .accepted(status):
            do {
                try settle(name: name, outbox: outbox, into: settings.keepSent ? "sent" : nil)
                logger.info("bundle uploaded", metadata: ["bundle": "\(name)", "status": "\(status)"])
            } catch {
                // Sent, but still here: the next pass sends it again and the server answers 409.
                logger.error("bundle uploaded but not removed from the outbox", metadata: ["bundle": "\(name)", "error": "\(error)"])
            }
        case let .rejected(status, body):
            logger.error("the server refused the bundle; moved to rejected/", metadata: [
                "bundle": "\(name)", "status": "\(status)", "body": "\(body.trimmingCharacters(in: .whitespacesAndNewlines))",
            ])
            do { try settle(name: name, outbox: outbox, into: "rejected") } catch {
                logger.error("cannot move the refused bundle", metadata: ["bundle": "\(name)", "error": "\(error)"])
            }
        case let .failed(reason):
            logger.warning("bundle not uploaded", metadata: ["bundle": "\(name)", "error": "\(reason)"])
        }
        await runtime.recordUpload(outcome, url: settings.url, at: started)
        return outcome
    }

    func makeRequest(name: String, path: String, settings: UploadSettings) throws(UploadError) -> CurlPut.Request {
        guard let url = settings.url else { throw UploadError("no [upload] url configured") }
        let size: Int64
        let digest: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
            size = Int64(data.count)
            digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        } catch {
            throw UploadError("cannot read \(path): \(error.localizedDescription)")
        }
        var headers = [
            "Content-Type: application/gzip",
            "X-Care-Bundle-SHA256: \(digest)",
            // A server answering 100-continue slowly would otherwise delay every upload by a second.
            "Expect:",
        ]
        if let token = try settings.token(environment: environment) {
            guard !token.isEmpty, !token.contains(where: { $0.isNewline }) else {
                throw UploadError("the upload token is empty")
            }
            headers.append("Authorization: Bearer \(token)")
        }
        let escaped = name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name
        return CurlPut.Request(url: url + escaped, file: path, size: size, headers: headers, caFile: settings.caFile,
                               clientCertificate: settings.clientCertificate, clientKey: settings.clientKey, proxy: settings.proxy,
                               timeout: settings.timeout, allowPlainHTTP: url.lowercased().hasPrefix("http://"))
    }

    /// Deletes `name` from the outbox, or moves it into `<outbox>/<folder>/`; then makes the
    /// directory change durable so that a crash cannot bring a settled bundle back.
    func settle(name: String, outbox: String, into folder: String?) throws(UploadError) {
        let path = outbox + "/" + name
        if let folder {
            let target = outbox + "/" + folder
            if mkdir(target, 0o750) != 0 && errno != EEXIST {
                throw UploadError("cannot create \(target): \(String(cString: strerror(errno)))")
            }
            guard rename(path, target + "/" + name) == 0 else {
                throw UploadError("cannot move \(path) to \(target)/: \(String(cString: strerror(errno)))")
            }
            Self.syncDirectory(target)
        } else {
            guard unlink(path) == 0 || errno == ENOENT else {
                throw UploadError("cannot remove \(path): \(String(cString: strerror(errno)))")
            }
        }
        Self.syncDirectory(outbox)
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
