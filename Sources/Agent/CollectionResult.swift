import Foundation
import Bundle
import Junos

/// What started a collection.
public enum CollectionCause: String, Codable, Sendable {
    /// The service's schedule.
    case schedule
    /// `care-agent collect now` through the running service.
    case request
    /// `care-agent collect now --standalone`.
    case standalone
    /// An incident the health poll (or syslog) noticed: an immediate diagnostic collection.
    case event
    /// The health poll's own short session (never stored as a bundle).
    case poll
}

/// How one RPC went.
public enum RPCStatus: String, Codable, Sendable {
    case ok
    /// The device answered with an `rpc-error`.
    case rpcError = "rpc-error"
    /// No complete reply within the RPC's (or the device's remaining) time.
    case timeout
    /// The session broke (closed, cut off, malformed framing).
    case transportError = "transport-error"
    /// The device has no such feature (virtual chassis on a standalone router, cluster off an SRX).
    case notApplicable = "not-applicable"
    /// Never sent: the session was lost earlier, or the device's time ran out.
    case notRun = "not-run"
    /// The reply went past a parsing limit (nesting depth, DOCTYPE, size; docs/security.md):
    /// refused and not kept.
    case refused

    /// Whether this outcome counts against the device.
    public var isFailure: Bool {
        switch self {
        case .ok, .notApplicable: return false
        case .rpcError, .timeout, .transportError, .notRun, .refused: return true
        }
    }
}

/// How one RPC of a device's collection went (the bundle keeps its own RPCOutcome).
public struct RPCResult: Codable, Sendable, Equatable {
    /// `get-chassis-inventory`, `command "show system users"`.
    public var name: String
    public var status: RPCStatus
    /// Why it failed or was not applicable; device warnings for an `ok`.
    public var message: String?
    public var durationMilliseconds: Int64
    /// Size of the stored (redacted) reply.
    public var bytes: Int
    /// The file the reply is stored as inside the result, if stored.
    public var file: String?

    public init(name: String, status: RPCStatus, message: String? = nil, durationMilliseconds: Int64 = 0, bytes: Int = 0, file: String? = nil) {
        self.name = name
        self.status = status
        self.message = message
        self.durationMilliseconds = durationMilliseconds
        self.bytes = bytes
        self.file = file
    }
}

/// How a device's collection ended.
public enum DeviceStatus: String, Codable, Sendable {
    /// Every RPC answered (or was not applicable).
    case ok
    /// Some RPCs answered, some failed.
    case partial
    /// Nothing was collected: no session, or every RPC failed.
    case failed
    /// Not attempted: the device was already being collected (or the run was cancelled first).
    case skipped
    /// Not attempted by this request because an earlier collection has the device waiting for its
    /// turn: that one collects it, so the request is satisfied without a second session.
    case queued

    /// Whether the device was collected (well or not); only these results are recorded and counted.
    public var attempted: Bool { self == .ok || self == .partial || self == .failed }
}

/// Why a device failed, in words a network engineer can act on, classed for summaries.
public enum FailureKind: String, Codable, Sendable {
    case unreachable, timeout, authentication, hostKey = "host-key", credentials, session, rpcErrors = "rpc-errors", busy
    /// Never started: the collection was cancelled (the agent stopping) while the device waited for
    /// its turn. Reported as `skipped`, and not recorded as the device's last result.
    case cancelled
    /// Collected, but the bundle could not be written (outbox full, read-only or missing): nothing
    /// will be uploaded, so the collection counts as failed.
    case notStored = "not-stored"
}

/// The result of collecting one device once: what was asked, what came back, the parsed facts.
public struct DeviceResult: Codable, Sendable {
    public var device: Device
    public var host: String
    public var port: Int
    public var trigger: CollectionCause
    public var started: Date
    public var finished: Date
    public var status: DeviceStatus
    public var failureKind: FailureKind?
    /// Why the device failed or is partial; nil when ok.
    public var reason: String?
    /// Connection attempts made (1 + retries used).
    public var attempts: Int
    public var rpcs: [RPCResult]
    public var facts: DeviceFacts {
        didSet { factsJSON = nil }
    }
    /// `facts` as facts.json (``BundleWriter/factsJSON(_:)``), encoded once when the collection
    /// finishes for both its bundle and its results file; nil once `facts` change (and in
    /// decoded results). Not part of the encoding.
    public internal(set) var factsJSON: [UInt8]? = nil
    /// The collection's log lines for this device (also sent to the agent's logger).
    public var log: String
    /// When this collection did not fully identify the device (its software or its chassis
    /// inventory missing: it failed, or those RPCs did), the facts of the last one that did, so
    /// that `inventory` keeps model, serial, version and FRUs across failed runs. Set by
    /// ``ResultStore/save(_:)``; nil otherwise.
    public var lastGood: LastGoodFacts? = nil
    /// The incident behind an `event` collection (recorded in its bundle's manifest); nil otherwise.
    public var event: TriggerEvent? = nil
    /// Where the sink stored this collection (the bundle's path); nil when not stored.
    public var stored: String? = nil

    /// This result without its facts and log (status, reason, RPC outcomes and where it was
    /// stored remain), for callers that keep many results at once.
    public var withoutFacts: DeviceResult {
        var light = self
        light.facts = DeviceFacts()
        light.lastGood = nil
        light.log = ""
        return light
    }

    enum CodingKeys: String, CodingKey {
        case device, host, port, trigger, started, finished, status, failureKind, reason, attempts, rpcs, facts, log
        case lastGood, event, stored
    }

    /// With `userInfo[.omittingFacts]` set, the facts are left out: ``ResultStore`` then writes
    /// the bytes already encoded for the bundle in their place.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(device, forKey: .device)
        try c.encode(host, forKey: .host)
        try c.encode(port, forKey: .port)
        try c.encode(trigger, forKey: .trigger)
        try c.encode(started, forKey: .started)
        try c.encode(finished, forKey: .finished)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(failureKind, forKey: .failureKind)
        try c.encodeIfPresent(reason, forKey: .reason)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(rpcs, forKey: .rpcs)
        if encoder.userInfo[.omittingFacts] == nil { try c.encode(facts, forKey: .facts) }
        try c.encode(log, forKey: .log)
        try c.encodeIfPresent(lastGood, forKey: .lastGood)
        try c.encodeIfPresent(event, forKey: .event)
        try c.encodeIfPresent(stored, forKey: .stored)
    }

    /// Whether this collection identified the device: both its software and its chassis inventory.
    public var identifiesDevice: Bool { facts.software != nil && facts.inventory != nil }

    /// The device's facts as best known, with the start time of the collection they come from:
    /// this collection's; the last good ones when this one has neither software nor inventory;
    /// this one's with the missing one of the two taken from the last good ones otherwise.
    public var bestFacts: (facts: DeviceFacts, collected: Date) {
        guard !identifiesDevice, let lastGood else { return (facts, started) }
        if bestFactsAreLastGood { return (lastGood.facts, lastGood.collected) }
        var merged = facts
        if merged.software == nil { merged.software = lastGood.facts.software }
        if merged.inventory == nil { merged.inventory = lastGood.facts.inventory }
        return (merged, started)
    }

    /// Whether ``bestFacts`` are wholly an earlier collection's (this one has neither software
    /// nor inventory): reports then say this collection failed rather than show them as today's.
    public var bestFactsAreLastGood: Bool { lastGood != nil && facts.software == nil && facts.inventory == nil }

    public var duration: Duration { .milliseconds(Int64(finished.timeIntervalSince(started) * 1000)) }

    /// Turns the result into a failure because its bundle could not be written: a collection that
    /// never reaches the outbox is lost for the support side, whatever the device answered. The
    /// device's own outcome stays in the reason and the log.
    public mutating func markNotStored(_ error: any Error) {
        let collected = status == .ok ? "collected ok" : "collected \(status.rawValue): \(reason ?? "")"
        status = .failed
        failureKind = .notStored
        reason = "not stored: \(error) (\(collected))"
        log += "not stored: \(error)\n"
    }
}

extension CodingUserInfoKey {
    /// Set (to anything) to leave a ``DeviceResult``'s facts out of its encoding.
    static let omittingFacts = CodingUserInfoKey(rawValue: "care-agent.omitting-facts")!
}

/// The facts of an earlier collection, kept beside a failed one.
public struct LastGoodFacts: Codable, Sendable {
    /// When that collection started.
    public var collected: Date
    public var facts: DeviceFacts

    public init(collected: Date, facts: DeviceFacts) {
        self.collected = collected
        self.facts = facts
    }
}

/// One stored reply: its RPC, a file name, and its bytes after redaction, held deflated until a
/// sink writes them (``DeflatedBytes``: hundreds of collections in flight each keep theirs).
public struct CollectedReply: Sendable {
    public var rpc: String
    public var file: String
    public var content: DeflatedBytes

    public init(rpc: String, file: String, bytes: [UInt8]) {
        self.rpc = rpc
        self.file = file
        content = DeflatedBytes(bytes)
    }

    /// The redacted reply.
    public var bytes: [UInt8] { content.bytes }
}

/// A device's result with its redacted replies: what a ``CollectionSink`` stores.
public struct DeviceCollection: Sendable {
    public var result: DeviceResult
    public var replies: [CollectedReply]
}

/// A device's result without facts and log, for `--json` summaries and status.
public struct DeviceSummary: Codable, Sendable {
    public var name: String
    public var group: String
    public var host: String
    public var port: Int
    public var status: DeviceStatus
    public var failure: FailureKind?
    public var reason: String?
    public var started: Date
    public var durationSeconds: Double
    public var attempts: Int
    public var rpcs: [RPCResult]
    /// The bundle this collection wrote (its file name in the outbox), for telling support which
    /// one to look at; nil when none was stored.
    public var bundle: String?

    public init(_ r: DeviceResult) {
        name = r.device.name
        group = r.device.group
        host = r.host
        port = r.port
        status = r.status
        failure = r.failureKind
        reason = r.reason
        started = r.started
        durationSeconds = (r.finished.timeIntervalSince(r.started) * 1000).rounded() / 1000
        attempts = r.attempts
        rpcs = r.rpcs
        bundle = r.stored.map { ($0 as NSString).lastPathComponent }
    }
}

