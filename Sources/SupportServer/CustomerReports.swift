import Bundle
import Crypto
import Foundation
import Junos
import Reports
import SupportStore

/// A customer's reports over each device's latest stored bundles: the same Reports library as
/// `care-agent report`, used by `care-support report`, `notify` and the served API and pages.
/// Each bundle is read again from the file store and verified against the keys trusted for the
/// customer now, so a revoked key's bundles drop out of every report.
public struct CustomerReports: Sendable {
    public let database: any SupportDatabase
    public let files: BundleFileStore
    public let data: ReferenceData
    public let settings: SupportConfiguration.ReportSettings
    /// Reading a customer's bundles for a report holds them unpacked and parses their
    /// configurations: at most as many at once as there are CPUs, customers taking turns, so
    /// that a burst of report requests cannot exhaust memory.
    let readers = ConcurrencyGate(limit: max(2, ProcessInfo.processInfo.activeProcessorCount))
    /// Answers rendered for the served API and pages, by what they were computed from.
    let rendered = RenderedReports()

    public init(database: any SupportDatabase, files: BundleFileStore, data: ReferenceData, settings: SupportConfiguration.ReportSettings) {
        self.database = database
        self.files = files
        self.data = data
        self.settings = settings
    }

    /// Loads the reference data `[reports] data-directory` (or `explicit`) names, or the
    /// installed one.
    public static func referenceData(explicit: String?, settings: SupportConfiguration.ReportSettings) throws(ReferenceDataError) -> ReferenceData {
        guard let directory = ReferenceData.locate(explicit: explicit, configured: settings.dataDirectory) else { throw .notFound }
        return try ReferenceData.load(directory: directory)
    }

    /// Each device's latest snapshot and the one before (new core dumps), and the bundles that
    /// could not be used (named, with why).
    public struct Devices: Sendable {
        public var snapshots: [(latest: DeviceSnapshot, previous: DeviceSnapshot?)]
        public var refused: [String]
        /// A stored file could not be read now (not refused for what it holds): an answer built
        /// on this is not kept for the next request.
        public var missedFiles = false
        public var latest: [DeviceSnapshot] { snapshots.map(\.latest) }
    }

    public func devices(customer: String, readsConfiguration: Bool = true) async throws(SupportStoreError) -> Devices {
        await devices(try await inputs(customer: customer), readsConfiguration: readsConfiguration)
    }

    /// What a customer's reports are computed from: the keys trusted now and each device's newest
    /// few bundles (rows, not yet read).
    struct Inputs: Sendable {
        var customer: String
        var keys: Set<AgentPublicKey>
        var bundles: [StoredBundle]

        /// The same for the same keys and bundles (each bundle's file is content-addressed).
        var fingerprint: String {
            var text = customer + "\n" + keys.map(\.fingerprint).sorted().joined(separator: ",") + "\n"
            for bundle in bundles { text += bundle.id.uuidString + " " + bundle.fileSHA256 + "\n" }
            return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
        }
    }

    func inputs(customer: String) async throws(SupportStoreError) -> Inputs {
        guard try await database.customer(named: customer) != nil else { throw .unknownCustomer(customer) }
        // Each device's newest few: two to use, room for a few refused (a revoked key's). Every
        // bundle of the history was loaded, and all of a device's read when none verified, on
        // every report request.
        return Inputs(customer: customer, keys: try await database.trustedKeys(customer: customer),
                      bundles: try await database.recentBundles(customer: customer, perDevice: Self.bundlesReadPerDevice))
    }

    /// `render` over the customer's devices, served: the answer rendered before from the same
    /// bundles and keys on the same day (UTC) when there is one. Each request used to read and
    /// verify every device's newest bundles again (seconds for a few thousand devices, for each
    /// page a browser refreshes); a new bundle, a key trusted or revoked, or a new day computes
    /// it again (replacing the answer kept), as does the first of identical requests arriving
    /// together (the others wait for it). An answer missing a file that could not be read is
    /// not kept.
    /// `also`: what else the answer is computed from (the states a notification compares against).
    public func served(customer: String, report: String, readsConfiguration: Bool, also: String = "", now: Date = Date(),
                       render: @escaping @Sendable (Devices) throws -> String) async throws -> String {
        let inputs = try await inputs(customer: customer)
        let day = Int(now.timeIntervalSince1970 / 86400)
        let other = also.isEmpty ? "" : "|" + SHA256.hash(data: Data(also.utf8)).map { String(format: "%02x", $0) }.joined()
        return try await rendered.answer(for: "\(customer)|\(report)|\(readsConfiguration)", inputs: "\(day)|\(inputs.fingerprint)\(other)") {
            let devices = await self.devices(inputs, readsConfiguration: readsConfiguration)
            return (try render(devices), keep: !devices.missedFiles)
        }
    }

    private func devices(_ inputs: Inputs, readsConfiguration: Bool) async -> Devices {
        let customer = inputs.customer
        // Checked a piece at a time, keeping the facts and (for bugs) the configuration reply:
        // the other raw replies of every bundle were held whole on each report request.
        var streaming = BundleReader(trust: .keys(inputs.keys), retainsContents: false)
        if readsConfiguration { streaming.retainedReplies = [FactKind.configuration.rpc] }
        let reader = streaming
        let bundles = inputs.bundles
        let files = files
        await readers.enter(customer: customer)
        // Reading and verifying files blocks: off the cooperative pool, as the intake does.
        let devices = await BundleIntake.offload { () -> Devices in
            var kept: [String: Int] = [:]
            var snapshots: [DeviceSnapshot] = []
            var refused: [String] = []
            var missedFiles = false
            // Newest first: the first two verified bundles of each device.
            for bundle in bundles where kept[bundle.device, default: 0] < 2 {
                do {
                    let verified = try reader.read(contentsOf: URL(fileURLWithPath: files.path(sha256: bundle.fileSHA256)))
                    snapshots.append(DeviceSnapshot(bundle: verified, source: "bundle \(bundle.id.uuidString)", readsConfiguration: readsConfiguration))
                    kept[bundle.device, default: 0] += 1
                } catch {
                    // Customers read this (the API, notifications): the store's paths stay out of it.
                    let unreadable = if case .unreadableFile = error as? BundleError { true } else { false }
                    missedFiles = missedFiles || unreadable
                    let reason = unreadable ? "its stored file cannot be read now" : "\(error)"
                    // As it is: each output escapes it its own way (a terminal, HTML, JSON).
                    refused.append("bundle \(bundle.id.uuidString) (\(bundle.device)): refused: \(reason)")
                }
            }
            return Devices(snapshots: DeviceSnapshot.latestPerDevice(snapshots), refused: refused, missedFiles: missedFiles)
        }
        await readers.leave()
        return devices
    }

    /// Bundles of a device a report reads at most: the two newest that verify are used.
    static let bundlesReadPerDevice = 6

    public func bugs(_ devices: Devices, now: Date = Date()) -> BugReport {
        BugReport(devices: devices.latest, data: data, generated: now)
    }

    public func lifecycle(_ devices: Devices, withinMonths: Int? = nil, now: Date = Date()) -> LifecycleReport {
        LifecycleReport(devices: devices.latest, data: data, withinMonths: withinMonths ?? settings.eolWindowMonths, today: now)
    }

    public func health(_ devices: Devices, now: Date = Date()) -> HealthReport {
        HealthReport(devices: devices.snapshots, thresholds: settings.thresholds, now: now)
    }
}

/// Rendered report answers (``CustomerReports/served(customer:report:readsConfiguration:now:render:)``):
/// one per customer and report, with what it was computed from; an answer from other inputs
/// replaces it (an old one could never be asked for again). The most recently used kept, at most
/// `capacity` of them and `maximumBytes` in all (a bug report page for thousands of devices
/// runs to tens of megabytes); one computation at a time per answer.
actor RenderedReports {
    let capacity: Int
    let maximumBytes: Int

    init(capacity: Int = 64, maximumBytes: Int = 256 << 20) {
        self.capacity = capacity
        self.maximumBytes = maximumBytes
    }
    /// `generation`: which computation the entry is (a stale one finishing, or failing, must
    /// not touch the entry that replaced it, even from the same inputs).
    private var answers: [String: (inputs: String, generation: Int, task: Task<String, any Error>)] = [:]
    /// Keys, least recently used first.
    private var order: [String] = []
    /// Bytes of each finished answer kept, and their sum.
    private var sizes: [String: Int] = [:]
    private var totalBytes = 0
    /// Computations started (for tests: a kept answer starts none).
    private(set) var computed = 0
    /// Answers kept now (for tests).
    var keptCount: Int { answers.count }

    func answer(for key: String, inputs: String,
                compute: @escaping @Sendable () async throws -> (String, keep: Bool)) async throws -> String {
        let task: Task<String, any Error>
        let generation: Int
        if let known = answers[key], known.inputs == inputs {
            (task, generation) = (known.task, known.generation)
        } else {
            forget(key, generation: answers[key]?.generation)
            computed += 1
            generation = computed
            task = Task {
                let (answer, keep) = try await compute()
                await self.settled(key, generation: generation, bytes: answer.utf8.count, keep: keep)
                return answer
            }
            answers[key] = (inputs, generation, task)
        }
        order.removeAll { $0 == key }
        order.append(key)
        evict(sparing: key)
        do {
            return try await task.value
        } catch {
            // A failure is not kept: the next request tries again.
            forget(key, generation: generation)
            throw error
        }
    }

    private func settled(_ key: String, generation: Int, bytes: Int, keep: Bool) {
        guard answers[key]?.generation == generation else { return }
        guard keep, bytes <= maximumBytes else { forget(key, generation: generation); return }
        totalBytes += bytes - (sizes[key] ?? 0)
        sizes[key] = bytes
        evict(sparing: key)
    }

    /// The least recently used go until within both limits (never `key`, just asked for).
    private func evict(sparing key: String) {
        while order.count > capacity || totalBytes > maximumBytes, let victim = order.first(where: { $0 != key }) {
            guard let kept = answers[victim] else { order.removeAll { $0 == victim }; continue }
            forget(victim, generation: kept.generation)
        }
    }

    /// Drops the answer of `key` if it is still computation `generation`.
    private func forget(_ key: String, generation: Int?) {
        guard let generation, answers[key]?.generation == generation else { return }
        answers[key] = nil
        order.removeAll { $0 == key }
        totalBytes -= sizes.removeValue(forKey: key) ?? 0
    }
}
