import Bundle
import Foundation
import Junos

/// A verified bundle as the support side keeps it: who sent it, what it describes, and where its
/// file is (content-addressed by ``fileSHA256``). Built from a ``VerifiedBundle`` by
/// ``init(verified:customer:fileSHA256:fileSize:received:)``; the facts themselves stay in the file.
public struct StoredBundle: Sendable, Equatable, Codable {
    /// The bundle id of its manifest: the identity that makes uploads idempotent.
    public var id: UUID
    public var customer: String
    /// The agent installation (`[agent] id` of agent.conf) and its version.
    public var agent: String
    public var agentVersion: String
    /// Fingerprint of the key that signed the manifest.
    public var signer: String
    /// The device's name in the agent's inventory.
    public var device: String
    public var address: String
    public var hostname: String?
    public var model: String?
    public var serial: String?
    /// Junos version of the device-level entry.
    public var version: String?
    /// Every distinct version the routing engines, members or nodes run.
    public var releases: [String]
    public var trigger: String
    /// Collection start and end.
    public var collected: Date
    public var finished: Date
    public var received: Date
    /// RPCs that failed (rpc-error, timeout, transport error) and how many ran.
    public var failedRPCs: [String]
    public var rpcCount: Int
    /// Each RPC's outcome as the manifest has it.
    public var outcomes: [RPCOutcome]
    /// Field-replaceable units of the chassis inventory.
    public var frus: [FieldReplaceableUnit]
    /// Lower-case hex SHA-256 and size of the bundle file as received.
    public var fileSHA256: String
    public var fileSize: Int
    /// The name the agent sent it under (`<hostname>-<serial>-<time>.tar.gz`).
    public var fileName: String

    public init(id: UUID, customer: String, agent: String, agentVersion: String, signer: String, device: String,
                address: String, hostname: String?, model: String?, serial: String?, version: String?,
                releases: [String], trigger: String, collected: Date, finished: Date, received: Date,
                failedRPCs: [String], rpcCount: Int, outcomes: [RPCOutcome], frus: [FieldReplaceableUnit],
                fileSHA256: String, fileSize: Int, fileName: String) {
        self.id = id
        self.customer = customer
        self.agent = agent
        self.agentVersion = agentVersion
        self.signer = signer
        self.device = device
        self.address = address
        self.hostname = hostname
        self.model = model
        self.serial = serial
        self.version = version
        self.releases = releases
        self.trigger = trigger
        // Whole milliseconds, as the databases keep them, so that a record reads back equal.
        self.collected = SupportSchema.stored(collected)
        self.finished = SupportSchema.stored(finished)
        self.received = SupportSchema.stored(received)
        self.failedRPCs = failedRPCs
        self.rpcCount = rpcCount
        self.outcomes = outcomes
        self.frus = frus
        self.fileSHA256 = fileSHA256
        self.fileSize = fileSize
        self.fileName = fileName
    }

    /// What to keep of a bundle whose signature, hashes and format checked out.
    public init(verified: VerifiedBundle, customer: String, fileName: String, fileSHA256: String, fileSize: Int,
                received: Date = Date()) {
        let manifest = verified.manifest
        let facts = verified.contents.facts
        let software = facts.software
        var releases: [String] = []
        for version in (software?.routingEngines ?? []).compactMap(\.version?.raw) where !releases.contains(version) {
            releases.append(version)
        }
        if let version = software?.version?.raw, !releases.contains(version) { releases.insert(version, at: 0) }
        self.init(
            id: manifest.bundleId, customer: customer, agent: manifest.agent.id, agentVersion: manifest.agent.version,
            signer: verified.signer.fingerprint, device: manifest.device.name, address: manifest.device.address,
            hostname: software?.hostname ?? manifest.device.hostname,
            model: software?.model ?? manifest.device.model,
            serial: facts.inventory?.chassisSerial ?? manifest.device.chassisSerial,
            version: software?.version?.raw, releases: releases, trigger: manifest.collection.trigger.rawValue,
            collected: manifest.collection.started, finished: manifest.collection.finished, received: received,
            failedRPCs: manifest.outcomes.filter { $0.status.isFailure }.map(\.rpc), rpcCount: manifest.outcomes.count,
            outcomes: manifest.outcomes, frus: facts.inventory?.frus ?? [],
            fileSHA256: fileSHA256, fileSize: fileSize, fileName: fileName)
    }

    /// The JSON names (`care-support bundles --json`, the API): snake_case.
    enum CodingKeys: String, CodingKey {
        case id, customer, agent, agentVersion = "agent_version", signer, device, address, hostname, model, serial
        case version, releases, trigger, collected, finished, received, failedRPCs = "failed_rpcs", rpcCount = "rpc_count"
        case outcomes, frus, fileSHA256 = "file_sha256", fileSize = "file_size", fileName = "file_name"
    }

    /// "ok", "2 of 9 RPCs failed: get-a, get-b", or "nothing collected" for a bundle without a
    /// single RPC (the session never came up: unreachable, authentication, host key; the
    /// bundle's collection log says which).
    public var result: String {
        if rpcCount == 0 { return "nothing collected (no session: see the bundle's collection log)" }
        return failedRPCs.isEmpty ? "ok" : "\(failedRPCs.count) of \(rpcCount) RPCs failed: \(failedRPCs.joined(separator: ", "))"
    }
}

/// One device as the support side last saw it: the latest stored bundle of that device name
/// for that customer. Encodes as the `care-support devices --json` object.
public struct DeviceSummary: Sendable, Equatable, Encodable {
    public var customer: String
    public var latest: StoredBundle
    /// How many bundles of the device are stored.
    public var bundleCount: Int

    public init(customer: String, latest: StoredBundle, bundleCount: Int) {
        self.customer = customer
        self.latest = latest
        self.bundleCount = bundleCount
    }

    enum CodingKeys: String, CodingKey {
        case customer, device, hostname, model, serial, version, releases
        case lastBundle = "last_bundle", lastBundleId = "last_bundle_id", lastReceived = "last_received"
        case lastResult = "last_result", bundles
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(customer, forKey: .customer)
        try container.encode(latest.device, forKey: .device)
        try container.encode(latest.hostname, forKey: .hostname)
        try container.encode(latest.model, forKey: .model)
        try container.encode(latest.serial, forKey: .serial)
        try container.encode(latest.version, forKey: .version)
        try container.encode(latest.releases, forKey: .releases)
        try container.encode(latest.collected, forKey: .lastBundle)
        try container.encode(latest.id, forKey: .lastBundleId)
        try container.encode(latest.received, forKey: .lastReceived)
        try container.encode(latest.result, forKey: .lastResult)
        try container.encode(bundleCount, forKey: .bundles)
    }
}

/// A customer: whose bundles these are, who may upload them.
public struct Customer: Sendable, Equatable, Codable {
    public var name: String
    public var created: Date

    public init(name: String, created: Date) {
        self.name = name
        self.created = created
    }

    /// Names are used on command lines, in URLs and in file names: letters, digits, `.`, `_`, `-`.
    public static func validate(name: String) throws(SupportStoreError) {
        guard (1...64).contains(name.count),
              name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }),
              !name.hasPrefix("."), !name.hasPrefix("-") else {
            throw .invalid("customer name \"\(name.prefix(80))\": expected 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
        }
    }
}

/// What a token lets its holder do: upload bundles (agents), or read the customer's views
/// through the read-only API.
public enum TokenScope: String, Sendable, CaseIterable {
    case upload
    case read
}

/// A token as stored: never the token itself, only its SHA-256.
public struct UploadTokenRecord: Sendable, Equatable {
    /// The public part of the token (before the "."), shown by `token list` and used by `token revoke`.
    public var id: String
    public var customer: String
    public var scope: TokenScope
    public var created: Date
    public var revoked: Date?

    public init(id: String, customer: String, scope: TokenScope = .upload, created: Date, revoked: Date?) {
        self.id = id
        self.customer = customer
        self.scope = scope
        self.created = created
        self.revoked = revoked
    }
}

/// A client-certificate subject allowed (or once allowed) to upload for a customer.
public struct ClientSubjectRecord: Sendable, Equatable {
    public var customer: String
    /// RFC 4514, as `openssl x509 -noout -subject -nameopt RFC2253` prints it.
    public var subject: String
    public var added: Date
    public var revoked: Date?
    /// The public key it is pinned to (``ClientAccess/publicKeySHA256``); nil: any.
    public var publicKeySHA256: String?

    public init(customer: String, subject: String, added: Date, revoked: Date?, publicKeySHA256: String? = nil) {
        self.customer = customer
        self.subject = subject
        self.added = added
        self.revoked = revoked
        self.publicKeySHA256 = publicKeySHA256
    }
}

/// A key that signed uploads of a customer without being trusted (enrollment): the agent keeps
/// its bundles and retries until an engineer approves the key or the agent is stopped.
public struct PendingKeyRecord: Sendable, Equatable {
    /// Pending keys kept per customer: a customer's token could otherwise add a row for every
    /// key it signs with. The least recently seen go first; an agent still uploading comes back.
    public static let limitPerCustomer = 64

    public var customer: String
    public var key: AgentPublicKey
    /// The agent id and device of the last upload signed by it.
    public var agent: String
    public var device: String
    public var firstSeen: Date
    public var lastSeen: Date
    public var uploads: Int

    public init(customer: String, key: AgentPublicKey, agent: String, device: String, firstSeen: Date, lastSeen: Date, uploads: Int) {
        self.customer = customer
        self.key = key
        self.agent = agent
        self.device = device
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.uploads = uploads
    }
}

/// A key trusted (or once trusted) to sign a customer's bundles.
public struct TrustedKeyRecord: Sendable, Equatable {
    public var customer: String
    public var key: AgentPublicKey
    public var added: Date
    public var revoked: Date?

    public init(customer: String, key: AgentPublicKey, added: Date, revoked: Date?) {
        self.customer = customer
        self.key = key
        self.added = added
        self.revoked = revoked
    }
}

/// The JSON the support side prints and serves: sorted keys, times as ISO 8601 UTC with
/// milliseconds (`2025-11-25T02:00:00.250Z`).
public enum SupportJSON {
    public static func encoder(pretty: Bool = true) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(time(date))
        }
        return encoder
    }

    public static func time(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }
}
