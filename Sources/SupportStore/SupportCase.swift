import Bundle
import Foundation

/// An open (or closed) case: an incident a customer's agent reported with an event bundle
/// (`trigger: event`), recorded by the intake when it stores that bundle, and worked by support
/// until `care-support case close ID`. One case per bundle: a bundle uploaded twice opens one.
public struct SupportCase: Sendable, Equatable, Codable {
    public var id: UUID
    public var customer: String
    /// The device's name in the agent's inventory.
    public var device: String
    /// Event kind (`fru-offline`, `core-dump`, `alarm`, ...) and what noticed it (`poll`, `syslog`).
    public var eventKind: String
    public var eventSource: String
    /// When the agent noticed the incident.
    public var eventTime: Date
    /// The evidence the manifest records (bounded by the agent; cut at ``maximumEvidence`` here too).
    public var evidence: String
    /// The event bundle's id (its manifest's bundle id).
    public var bundle: UUID
    public var opened: Date
    /// nil while open.
    public var closed: Date?

    public static let maximumEvidence = 4000

    public init(id: UUID = UUID(), customer: String, device: String, eventKind: String, eventSource: String, eventTime: Date,
                evidence: String, bundle: UUID, opened: Date, closed: Date? = nil) {
        self.id = id
        self.customer = customer
        self.device = device
        self.eventKind = eventKind
        self.eventSource = eventSource
        self.eventTime = eventTime
        self.evidence = String(evidence.prefix(Self.maximumEvidence))
        self.bundle = bundle
        self.opened = opened
        self.closed = closed
    }

    /// The case an event bundle opens; nil for any other bundle.
    public init?(bundle: StoredBundle, manifest: BundleManifest, at date: Date) {
        guard manifest.collection.trigger == .event, let event = manifest.collection.event else { return nil }
        self.init(customer: bundle.customer, device: bundle.device, eventKind: event.kind, eventSource: event.source,
                  eventTime: event.time, evidence: event.evidence, bundle: bundle.id, opened: date)
    }

    public var isOpen: Bool { closed == nil }

    /// The JSON names (`care-support cases --json`, the API): snake_case, like bundles.
    enum CodingKeys: String, CodingKey {
        case id, customer, device, eventKind = "event_kind", eventSource = "event_source", eventTime = "event_time"
        case evidence, bundle = "bundle_id", opened, closed
    }
}
