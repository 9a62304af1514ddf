import Foundation
import Junos

/// Why a collection was made.
public enum CollectionTrigger: String, Codable, Sendable, CaseIterable {
    case scheduled
    case onDemand = "on-demand"
    /// An incident on the device (health poll or syslog) asked for an immediate diagnostic bundle.
    case event
}

/// The incident that triggered an `event` collection, as recorded in the manifest
/// (`collection.event`), so that the support side sees why the bundle exists.
public struct TriggerEvent: Codable, Sendable, Equatable {
    /// What happened: `alarm`, `core-dump`, `switchover`, `reboot`, `fru-offline`, or a syslog
    /// event tag such as `CHASSISD_FRU_OFFLINE_NOTICE`.
    public var kind: String
    /// What noticed it: `poll` (the health poll) or `syslog`.
    public var source: String
    /// When the agent noticed it (UTC).
    public var time: Date
    /// The evidence that raised it: the new alarm's text, the core file's name, the syslog line.
    public var evidence: String

    public init(kind: String, source: String, time: Date, evidence: String) {
        self.kind = kind
        self.source = source
        self.time = time
        self.evidence = evidence
    }
}

/// The agent that made a bundle.
public struct AgentIdentity: Codable, Sendable, Equatable {
    /// Stable identifier of the agent installation (from its configuration).
    public var id: String
    /// care-agent version string.
    public var version: String

    public init(id: String, version: String) {
        self.id = id
        self.version = version
    }
}

/// The device a bundle describes, as the agent knew it when collecting.
public struct DeviceIdentity: Codable, Sendable, Equatable {
    /// Name in the agent's inventory.
    public var name: String
    /// Address the agent connected to (host name or IP, optionally `:port`).
    public var address: String
    /// Host name the device reported (`<host-name>`), when known.
    public var hostname: String?
    public var chassisSerial: String?
    public var model: String?
    /// The platform the agent's inventory source gave the device (NetBox's or Nautobot's
    /// platform name, such as `Junos`), for reports; absent for devices from agent.conf and files.
    public var platform: String?

    public init(name: String, address: String, hostname: String? = nil, chassisSerial: String? = nil, model: String? = nil,
                platform: String? = nil) {
        self.name = name
        self.address = address
        self.hostname = hostname
        self.chassisSerial = chassisSerial
        self.model = model
        self.platform = platform
    }
}

/// How one RPC of a collection ended.
public struct RPCOutcome: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        /// A reply arrived (it may still hold warnings; its parse result is in facts.json).
        case ok
        /// The device answered with `<rpc-error>` and no data.
        case rpcError = "rpc-error"
        /// No reply within the collector's deadline.
        case timeout
        /// The SSH/NETCONF session failed during the RPC.
        case transportError = "transport-error"
        /// Asked, and the device has no such feature (virtual-chassis or chassis-cluster status on
        /// a model without it): its rpc-error reply is kept, but nothing failed.
        case notApplicable = "not-applicable"
        /// The reply went past a parsing limit (docs/security.md): refused, no reply kept.
        case refused

        /// Whether the RPC failed (not-applicable is not a failure).
        public var isFailure: Bool { self != .ok && self != .notApplicable }
    }

    /// RPC name; the reply, when there is one, is `raw/<rpc>.xml`.
    public var rpc: String
    public var status: Status
    /// What went wrong, as the collector saw it (nil for ok).
    public var message: String?
    /// Wall-clock time from sending the RPC to its reply or failure.
    public var durationSeconds: Double

    public init(rpc: String, status: Status, message: String? = nil, durationSeconds: Double) {
        self.rpc = rpc
        self.status = status
        self.message = message
        self.durationSeconds = durationSeconds
    }
}

/// One RPC reply as received (after secret redaction by the caller).
public struct RawReply: Sendable, Equatable {
    public var rpc: String
    public var bytes: [UInt8]

    public init(rpc: String, bytes: [UInt8]) {
        self.rpc = rpc
        self.bytes = bytes
    }

    /// Member path inside the bundle.
    public var memberName: String { "raw/\(rpc).xml" }
}

/// Records that a bundle was rebuilt from another one (`care-agent bundle reparse --write`).
public struct BundleDerivation: Codable, Sendable, Equatable {
    /// Bundle id of the original.
    public var bundleId: UUID
    /// Why it was rebuilt, for example "facts re-parsed by care-agent 1.2".
    public var reason: String
    /// Fingerprint of the key that signed the original.
    public var originalSigner: String

    public init(bundleId: UUID, reason: String, originalSigner: String) {
        self.bundleId = bundleId
        self.reason = reason
        self.originalSigner = originalSigner
    }
}

/// Everything a bundle holds, as the collector hands it over and as a reader gets it back.
public struct BundleContents: Sendable, Equatable {
    public var bundleId: UUID
    public var agent: AgentIdentity
    public var device: DeviceIdentity
    public var trigger: CollectionTrigger
    /// The incident behind an `event` collection; nil for scheduled and on-demand ones.
    public var event: TriggerEvent?
    /// Collection start and end (UTC; stored with millisecond precision).
    public var started: Date
    public var finished: Date
    /// One entry per RPC attempted, in the order they ran.
    public var outcomes: [RPCOutcome]
    /// Replies that arrived, each stored as `raw/<rpc>.xml`.
    public var rawReplies: [RawReply]
    public var facts: DeviceFacts
    /// The collector's log of this collection (`collection.log`).
    public var log: String
    public var derivedFrom: BundleDerivation?

    public init(bundleId: UUID = UUID(), agent: AgentIdentity, device: DeviceIdentity, trigger: CollectionTrigger,
                started: Date, finished: Date, outcomes: [RPCOutcome], rawReplies: [RawReply],
                facts: DeviceFacts, log: String, derivedFrom: BundleDerivation? = nil, event: TriggerEvent? = nil) {
        self.bundleId = bundleId
        self.event = event
        self.agent = agent
        self.device = device
        self.trigger = trigger
        self.started = started
        self.finished = finished
        self.outcomes = outcomes
        self.rawReplies = rawReplies
        self.facts = facts
        self.log = log
        self.derivedFrom = derivedFrom
    }
}

/// `manifest.json`: what the bundle is and the SHA-256 of every other member. Signed as a whole
/// (its exact bytes) by `manifest.sig`.
public struct BundleManifest: Codable, Sendable, Equatable {
    /// The format this code writes. Readers accept this and every earlier version.
    public static let currentFormatVersion = 1

    public struct Collection: Codable, Sendable, Equatable {
        public var trigger: CollectionTrigger
        /// Present for `event` collections only; bundles written before it existed have none.
        public var event: TriggerEvent?
        public var started: Date
        public var finished: Date
    }

    public struct Member: Codable, Sendable, Equatable {
        public var path: String
        public var size: Int
        /// Lower-case hex SHA-256 of the member's bytes.
        public var sha256: String
    }

    public struct Signer: Codable, Sendable, Equatable {
        /// Always "ed25519" in version 1.
        public var algorithm: String
        /// Base64 of the raw 32-byte Ed25519 public key.
        public var publicKey: String
    }

    public var formatVersion: Int
    public var bundleId: UUID
    public var agent: AgentIdentity
    public var device: DeviceIdentity
    public var collection: Collection
    public var outcomes: [RPCOutcome]
    /// Every member except manifest.json and manifest.sig.
    public var members: [Member]
    public var signer: Signer
    public var derivedFrom: BundleDerivation?

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(UTCTime.string(date))
        }
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = UTCTime.date(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 UTC time: \(text)")
            }
            return date
        }
        return decoder
    }
}

/// ISO 8601 UTC times with milliseconds, as the manifest stores them.
enum UTCTime {
    static func string(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }

    static func date(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt).parse(text))
            ?? (try? Date.ISO8601FormatStyle(timeZone: .gmt).parse(text))
    }

    /// Truncates to whole milliseconds, the precision the manifest keeps.
    static func truncated(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }
}
