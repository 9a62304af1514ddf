import Bundle
import Foundation
import Junos
import Logging

/// Stores each device's collection as one signed bundle in the outbox
/// (`<hostname>-<serial>-<time>.tar.gz`, added through ``FileOutbox``, written crash-safely).
public struct BundleSink: CollectionSink {
    public let outbox: FileOutbox
    public let agent: AgentIdentity

    /// `logger` hears what a write on a full disk removed to make room (``FileOutbox/add(_:)``).
    public init(outbox: String, key: AgentKey, agent: AgentIdentity, logger: Logger? = nil) {
        self.outbox = FileOutbox(directory: outbox, key: key, logger: logger)
        self.agent = agent
    }

    /// The agent's key from its state directory (created on first use) and an outbox writer.
    public init(configuration: AgentConfiguration, logger: Logger? = nil) throws {
        let key = try AgentKey.loadOrCreate(stateDirectory: URL(fileURLWithPath: configuration.agent.stateDirectory))
        self.init(outbox: configuration.agent.outbox, key: key,
                  agent: AgentIdentity(id: configuration.agent.agentID, version: AgentIdentity.careAgentVersion), logger: logger)
    }

    /// The writes and both fsyncs run on the store thread: an fsync on a busy disk can take long,
    /// and must not hold a thread of the cooperative pool. Encoding, compression and signing run
    /// in the collecting task, in parallel: on the one store thread they queued up behind each
    /// other when a wave of devices finished together, every waiting device holding its replies.
    static let storeThread = SerialWorkThread(name: "care-store")

    public func store(_ collection: consuming DeviceCollection) async throws -> String {
        let outbox = self.outbox
        let bundle = try outbox.seal(BundleSink.contents(collection, agent: agent), factsJSON: collection.result.factsJSON)
        // The replies are in the bundle now: gone before the wait for the store thread.
        _ = consume collection
        let stored: Result<String, OutboxError> = await Self.storeThread.run {
            Result { () throws(OutboxError) in outbox.path(of: try outbox.add(bundle).name) }
        }
        return try stored.get()
    }

    /// The bundle's view of a collection. RPCs never sent (not applicable to the model, or after
    /// the session was lost) are not outcomes in the bundle; the collection log says why.
    static func contents(_ collection: DeviceCollection, agent: AgentIdentity) -> BundleContents {
        let r = collection.result
        var outcomes: [RPCOutcome] = []
        var replies: [RawReply] = []
        var used = Set<String>()
        for (index, outcome) in r.rpcs.enumerated() {
            let status: RPCOutcome.Status
            switch outcome.status {
            case .ok: status = .ok
            case .rpcError: status = .rpcError
            case .timeout: status = .timeout
            case .transportError: status = .transportError
            case .refused: status = .refused
            case .notApplicable:
                // Asked, and the device said it has no such feature; never asked: left out.
                guard outcome.file != nil else { continue }
                status = .notApplicable
            case .notRun:
                continue
            }
            let name = bundleName(outcome.name, index: index, used: &used)
            outcomes.append(RPCOutcome(rpc: name, status: status, message: outcome.message,
                                             durationSeconds: Double(outcome.durationMilliseconds) / 1000))
            if let file = outcome.file, let reply = collection.replies.first(where: { $0.file == file }) {
                replies.append(RawReply(rpc: name, bytes: reply.bytes))
            }
        }
        let device = DeviceIdentity(name: r.device.name, address: r.port == 830 ? r.host : "\(r.host):\(r.port)",
                                    hostname: r.facts.software?.hostname, chassisSerial: r.facts.inventory?.chassisSerial,
                                    model: r.facts.software?.model, platform: r.device.platform)
        let trigger: CollectionTrigger
        switch r.trigger {
        case .schedule, .poll: trigger = .scheduled
        case .event: trigger = .event
        case .request, .standalone: trigger = .onDemand
        }
        return BundleContents(agent: agent, device: device, trigger: trigger, started: r.started, finished: r.finished,
                              outcomes: outcomes, rawReplies: replies, facts: r.facts, log: r.log,
                              event: r.trigger == .event ? r.event : nil)
    }

    /// A member-safe, unique name: Junos RPC names as they are, commands as `command-show_system_users`.
    static func bundleName(_ rpc: String, index: Int, used: inout Set<String>) -> String {
        var name = String(rpc.unicodeScalars.map { c -> Character in
            switch c {
            case "A"..."Z", "a"..."z", "0"..."9", "-", "_", ".": return Character(c)
            default: return "_"
            }
        })
        if name.hasPrefix("command__") { name = "command-" + name.dropFirst("command__".count) }
        while name.hasSuffix("_") { name.removeLast() }
        while name.hasPrefix(".") { name.removeFirst() }
        if name.isEmpty { name = "rpc" }
        // The member is raw/NAME.xml, and ustar keeps at most 100 bytes after the last "/": 88
        // leaves room for ".xml" and a "-N" that tells apart commands cut to the same name.
        name = String(name.prefix(88))
        if !used.insert(name).inserted {
            name += "-\(index + 1)"
            used.insert(name)
        }
        return name
    }
}

extension AgentIdentity {
    /// This build's version, recorded in every bundle.
    public static let careAgentVersion = "0.1.0"
}
