import Bundle
import Dispatch
import Foundation
import Logging
import SupportStore

/// How the intake answered one upload: the HTTP status and the one-line reason sent as the body.
public struct IntakeAnswer: Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    /// The bundle id, once the manifest was read.
    public var bundle: UUID?

    public init(status: Int, reason: String, bundle: UUID? = nil) {
        self.status = status
        self.reason = reason
        self.bundle = bundle
    }

    public var description: String { "\(status) \(reason)" }
}

/// Verifies an uploaded bundle and stores it, independently of HTTP: the body is already in an
/// ``IncomingFile``. Verification is complete before anything is stored: the signature by a key
/// trusted for the uploading customer, every member's size and SHA-256, the format version, and
/// the device identity (the manifest's serial and host name agree with the facts). Storing
/// places the file (content-addressed, fsynced) and only then commits its row: a crash in
/// between leaves an unreferenced file, never a row without its file, and the retry completes it.
public struct BundleIntake: Sendable {
    public let database: any SupportDatabase
    public let files: BundleFileStore
    public let maxBundleSize: Int
    /// Whether a valid bundle signed by an unknown key puts the key on the pending list
    /// (`enrollment = pending`) rather than only being refused.
    public let enrollment: Bool
    public let logger: Logger
    /// Verification inflates and hashes a bundle (up to 8 × `maxBundleSize`, a piece at a time,
    /// holding the manifest, facts and log, each at most 16 MiB): at most this many at once, so
    /// that many concurrent uploads cannot exhaust the CPUs or memory.
    let verifications: ConcurrencyGate
    /// Hidden, for tests: the process dies (`_exit(137)`) at this step of storing, named by
    /// `CARE_SUPPORT_CRASH_AT` (see ``CrashStep``), as a kill -9 would stop it there.
    let crashStep: CrashStep?

    /// Points of ``accept(_:sha256:name:customer:claimedSHA256:)`` where a test makes the process die.
    public enum CrashStep: String, Sendable, CaseIterable {
        /// The body is fsynced in incoming/, nothing verified yet.
        case received
        /// The file is linked into bundles/, its row not committed.
        case placed
        /// The row is committed, no answer sent.
        case committed
    }

    public static let crashEnvironmentVariable = "CARE_SUPPORT_CRASH_AT"

    public init(database: any SupportDatabase, files: BundleFileStore, maxBundleSize: Int, enrollment: Bool = false, logger: Logger) {
        self.database = database
        self.files = files
        self.maxBundleSize = maxBundleSize
        self.enrollment = enrollment
        self.logger = logger
        verifications = ConcurrencyGate(limit: max(2, ProcessInfo.processInfo.activeProcessorCount))
        crashStep = ProcessInfo.processInfo.environment[Self.crashEnvironmentVariable].flatMap(CrashStep.init(rawValue:))
    }

    private func crash(at step: CrashStep) {
        if step == crashStep { _exit(137) }
    }

    /// Bundle file names the intake takes: what the agent writes, no paths, no hidden files.
    public static func isAcceptableName(_ name: String) -> Bool {
        BundleFileName.isBundle(name) && name.count <= 255
            && name.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "A"..."Z", "a"..."z", "0"..."9", ".", "_", "-": return true
                default: return false
                }
            }
    }

    /// Verifies and stores `file` (finished, with its SHA-256) as `name` for `customer`.
    /// `claimedSHA256` is the agent's `X-Care-Bundle-SHA256` header, when sent.
    public func accept(_ file: IncomingFile, sha256: String, name: String, customer: String,
                       claimedSHA256: String?) async -> IntakeAnswer {
        var logger = logger
        logger[metadataKey: "customer"] = "\(customer)"
        logger[metadataKey: "file"] = "\(name)"
        let answer = await decide(file, sha256: sha256, name: name, customer: customer, claimedSHA256: claimedSHA256, logger: logger)
        if let bundle = answer.bundle { logger[metadataKey: "bundle"] = "\(bundle)" }
        logger[metadataKey: "status"] = "\(answer.status)"
        if answer.status >= 400 {
            // The reason may quote the bundle: one log line, no terminal escapes.
            logger.warning("upload refused: \(TerminalText.escaped(answer.reason))")
        } else {
            logger.info("upload \(answer.status == 201 ? "stored" : "already stored")", metadata: ["size": "\(file.size)"])
        }
        return answer
    }

    private func decide(_ file: IncomingFile, sha256: String, name: String, customer: String,
                        claimedSHA256: String?, logger: Logger) async -> IntakeAnswer {
        crash(at: .received)
        if let claimed = claimedSHA256?.lowercased(), claimed != sha256 {
            return IntakeAnswer(status: 400, reason: "the body's SHA-256 is \(sha256), X-Care-Bundle-SHA256 says \(claimed.prefix(64)): damaged or cut short in transit")
        }
        // The same bytes again (an agent's retry after an answer it never got, or after a crash
        // between upload and delete): they were verified when stored, so the answer is known
        // without inflating and hashing the bundle again. A store that cannot be read here
        // gets the full path, which says so.
        if let existing = try? await database.bundle(customer: customer, fileSHA256: sha256) {
            return await alreadyStored(existing, logger: logger)
        }
        let trusted: Set<AgentPublicKey>
        do {
            trusted = try await database.trustedKeys(customer: customer)
        } catch {
            return IntakeAnswer(status: 503, reason: "the store cannot be read now, try again later")
        }
        // Checked as it inflates, keeping only the manifest, facts and log: the file is stored
        // as it came, so nothing else of it is needed in memory.
        let reader = BundleReader(trust: .keys(trusted), limits: .init(
            maximumFileSize: maxBundleSize, maximumUnpackedSize: maxBundleSize * 8, maximumMemberSize: maxBundleSize * 8),
            retainsContents: false)
        let path = file.path
        let verified: VerifiedBundle
        do {
            verified = try await verify(path, with: reader, customer: customer).get()
        } catch .untrustedKey where enrollment {
            return await enroll(path: path, reader: reader, customer: customer)
        } catch {
            return Self.answer(for: error, customer: customer)
        }
        let id = verified.manifest.bundleId
        if let problem = verified.identityProblem {
            return IntakeAnswer(status: 422, reason: "inconsistent bundle: \(problem)", bundle: id)
        }
        var record = StoredBundle(verified: verified, customer: customer, fileName: name, fileSHA256: sha256, fileSize: file.size)
        // An agent whose clock runs ahead (a VM's clock set forward) dates its bundles in the
        // future: as dated, one would stay its device's latest for good (newer bundles ignored
        // by listings, reports and notify) and never age out. Such a bundle counts as collected
        // when it was received; its manifest keeps what the agent said.
        if record.collected > record.received.addingTimeInterval(Self.clockAheadTolerance) {
            logger.warning("bundle dated in the future: counted as collected when received (check the agent's clock)", metadata: [
                "bundle": "\(id)", "device": "\(TerminalText.escaped(record.device))",
                "collected": "\(record.collected)", "received": "\(record.received)",
            ])
            record.collected = record.received
            record.finished = record.received
        }
        // An event bundle opens a case. Also on a duplicate: an upload whose case could not be
        // recorded was answered 503, and its retry lands here (one case per bundle either way).
        let incident = SupportCase(bundle: record, manifest: verified.manifest, at: Date())
        do {
            if let existing = try await database.bundle(id: id) {
                // Only the same bytes of the same customer are its retry: a different bundle
                // under a stored id (another customer's, or forged) is refused and opens nothing.
                if let incident, Self.isRetry(existing, record) { try await openCase(incident, logger: logger) }
                return Self.duplicateAnswer(existing, record)
            }
            _ = try await Self.offload { () throws(SupportStoreError) in try files.place(file, sha256: sha256) }
            crash(at: .placed)
            switch try await database.insert(record) {
            case .inserted:
                crash(at: .committed)
                if let incident { try await openCase(incident, logger: logger) }
                return IntakeAnswer(status: 201, reason: "stored bundle \(id) of \(record.device)", bundle: id)
            case let .duplicate(existing):
                // Another intake process committed it a moment ago.
                if let incident, Self.isRetry(existing, record) { try await openCase(incident, logger: logger) }
                return Self.duplicateAnswer(existing, record)
            }
        } catch {
            logger.error("cannot store the bundle: \(error)")
            return IntakeAnswer(status: 503, reason: "the bundle cannot be stored now, try again later", bundle: id)
        }
    }

    /// The answer for bytes stored already for this customer: 200, and the case of an event
    /// bundle opened if its first upload could not record it (that upload was answered 503).
    private func alreadyStored(_ existing: StoredBundle, logger: Logger) async -> IntakeAnswer {
        if existing.trigger == CollectionTrigger.event.rawValue {
            do {
                // The stored file is these bytes, verified when they were stored.
                let manifest = try await Self.offload { () throws(BundleError) in
                    try BundleReader.unverifiedManifest(atPath: files.path(sha256: existing.fileSHA256))
                }
                if let incident = SupportCase(bundle: existing, manifest: manifest, at: Date()) {
                    try await openCase(incident, logger: logger)
                }
            } catch {
                logger.error("cannot open the case of a stored event bundle: \(error)")
                return IntakeAnswer(status: 503, reason: "the bundle is stored, its case cannot be recorded now, try again later", bundle: existing.id)
            }
        }
        return IntakeAnswer(status: 200, reason: "bundle \(existing.id) is stored already", bundle: existing.id)
    }

    private func openCase(_ incident: SupportCase, logger: Logger) async throws(SupportStoreError) {
        if try await database.openCase(incident) {
            logger.notice("case opened", metadata: [
                "customer": "\(incident.customer)", "device": "\(TerminalText.escaped(incident.device))",
                "event.kind": "\(TerminalText.escaped(incident.eventKind))",
                "case": "\(incident.id.uuidString.lowercased())", "bundle": "\(incident.bundle.uuidString.lowercased())",
            ])
        }
    }

    /// A bundle signed by a key not trusted for the customer, with enrollment on: verified in
    /// full against its own key, its key goes on the pending list; still 403 (the agent keeps
    /// the bundle and retries, so it is stored once the key is approved).
    private func enroll(path: String, reader: BundleReader, customer: String) async -> IntakeAnswer {
        let selfSigned = BundleReader(trust: .embeddedKey, limits: reader.limits, decodesFacts: false, retainsContents: false)
        let verified: VerifiedBundle
        do {
            verified = try await verify(path, with: selfSigned, customer: customer).get()
        } catch {
            return Self.answer(for: error, customer: customer)
        }
        let fingerprint = verified.signer.fingerprint
        // A key revoked for this customer stays refused: back on the pending list, one approval
        // (of a list that does not say it was revoked) would trust it again.
        do {
            if let revoked = try await database.keys(customer: customer).first(where: { $0.key == verified.signer })?.revoked {
                return IntakeAnswer(status: 403, reason: "revoked signer: the bundle is signed by \(fingerprint), revoked for customer \(customer) on \(SupportJSON.time(revoked))",
                                    bundle: verified.manifest.bundleId)
            }
        } catch {
            return IntakeAnswer(status: 503, reason: "the store cannot be read now, try again later", bundle: verified.manifest.bundleId)
        }
        do {
            let dropped = try await database.recordPending(customer: customer, key: verified.signer, agent: verified.manifest.agent.id,
                                                           device: verified.manifest.device.name, at: Date())
            if !dropped.isEmpty {
                logger.warning("pending keys over the limit: the least recently seen dropped", metadata: [
                    "customer": "\(customer)", "recorded": "\(fingerprint)", "dropped": "\(dropped.joined(separator: ","))",
                    "limit": "\(PendingKeyRecord.limitPerCustomer)",
                ])
            }
        } catch {
            logger.error("cannot record a pending key: \(error)", metadata: ["customer": "\(customer)", "key": "\(fingerprint)"])
            return IntakeAnswer(status: 503, reason: "the store cannot be written now, try again later", bundle: verified.manifest.bundleId)
        }
        return IntakeAnswer(status: 403, reason: "untrusted signer: the bundle is signed by \(fingerprint), which waits for approval for customer \(customer) (care-support agent approve \(customer) \(fingerprint))",
                            bundle: verified.manifest.bundleId)
    }

    /// Reads and verifies the file off Swift's cooperative threads, within the verification gate.
    private func verify(_ path: String, with reader: BundleReader, customer: String) async -> Result<VerifiedBundle, BundleError> {
        await verifications.enter(customer: customer)
        let result: Result<VerifiedBundle, BundleError>
        do {
            result = .success(try await Self.offload { () throws(BundleError) -> VerifiedBundle in
                try reader.read(contentsOf: URL(fileURLWithPath: path))
            })
        } catch {
            result = .failure(error)
        }
        await verifications.leave()
        return result
    }

    /// How far ahead of the intake's clock a collection may be dated (clocks drift; transit).
    static let clockAheadTolerance: TimeInterval = 600

    /// Whether `record` is `existing` uploaded again (the same bytes, the same customer).
    static func isRetry(_ existing: StoredBundle, _ record: StoredBundle) -> Bool {
        existing.fileSHA256 == record.fileSHA256 && existing.customer == record.customer
    }

    static func duplicateAnswer(_ existing: StoredBundle, _ record: StoredBundle) -> IntakeAnswer {
        if isRetry(existing, record) {
            return IntakeAnswer(status: 200, reason: "bundle \(record.id) is stored already", bundle: record.id)
        }
        // The same words whoever holds the id: the answer must not tell another customer's ids.
        return IntakeAnswer(status: 409, reason: "bundle id \(record.id) cannot be stored: the id is taken; this bundle is not stored", bundle: record.id)
    }

    /// The status for a bundle that did not verify: 413 too large, 403 signed by a key not trusted
    /// for this customer (a credential matter: the agent keeps the bundle and retries once the key
    /// is trusted), 422 for everything wrong inside the bundle.
    static func answer(for error: BundleError, customer: String) -> IntakeAnswer {
        switch error {
        case .tooLarge, .tooManyMembers:
            return IntakeAnswer(status: 413, reason: error.description)
        case let .untrustedKey(fingerprint):
            return IntakeAnswer(status: 403, reason: "untrusted signer: the bundle is signed by \(fingerprint), which is not trusted for customer \(customer) (care-support agent trust \(customer) --key ...)")
        case .unreadableFile:
            return IntakeAnswer(status: 503, reason: "the upload cannot be read back now, try again later")
        default:
            return IntakeAnswer(status: 422, reason: error.description)
        }
    }

    /// Runs blocking work (decompression, hashing, fsync) on a Dispatch thread, keeping Swift's
    /// cooperative threads free for other requests.
    static func offload<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                do throws(E) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// At most `limit` holders at once; the others wait their turn: customers take turns, and each
/// customer's waiters go in arrival order.
actor ConcurrencyGate {
    let limit: Int
    private var holders = 0
    /// Each customer's waiters, first come first served.
    private var waiting: [String: FIFO<CheckedContinuation<Void, Never>>] = [:]
    /// Customers with waiters, each once, in the order their turns come: one customer's burst of
    /// uploads waits behind its own, not in front of every other customer's.
    private var turns = FIFO<String>()

    init(limit: Int) { self.limit = limit }

    func enter(customer: String = "") async {
        if holders < limit {
            holders += 1
            return
        }
        await withCheckedContinuation { continuation in
            if waiting[customer] == nil { turns.append(customer) }
            waiting[customer, default: FIFO()].append(continuation)
        }
    }

    /// Hands the place to the first waiter of the customer whose turn it is, if any.
    func leave() {
        guard let customer = turns.popFirst(), let next = waiting[customer]?.popFirst() else {
            holders -= 1
            return
        }
        if waiting[customer]?.isEmpty == true { waiting[customer] = nil } else { turns.append(customer) }
        next.resume()
    }

    /// A FIFO that does not shift its elements on every removal (a burst of thousands of
    /// waiters would make `removeFirst` quadratic).
    struct FIFO<Element> {
        private var items: [Element] = []
        private var head = 0
        var isEmpty: Bool { head == items.count }

        mutating func append(_ item: Element) { items.append(item) }

        mutating func popFirst() -> Element? {
            guard head < items.count else { return nil }
            defer {
                head += 1
                if head > 64 && head * 2 > items.count { items.removeFirst(head); head = 0 }
            }
            return items[head]
        }
    }
}
