import Foundation
import Logging
import SupportStore

/// Retention as support.conf sets it (`keep`): per customer, bundles collected longer ago than
/// its `keep` are deleted, never the latest bundle of a device, and so are its notifications
/// recorded and cases closed longer ago; then every bundle file no bundle
/// references (and untouched for `grace`) goes. Run by `care-support db prune` and hourly by `serve`.
public struct Retention: Sendable {
    public let configuration: SupportConfiguration
    public let database: any SupportDatabase
    public let files: BundleFileStore
    public let logger: Logger
    /// A file written or touched this recently is kept even when unreferenced: an intake may be
    /// between placing it and committing its row.
    public let grace: TimeInterval

    public init(configuration: SupportConfiguration, database: any SupportDatabase, files: BundleFileStore, logger: Logger,
                grace: TimeInterval = 600) {
        self.configuration = configuration
        self.database = database
        self.files = files
        self.logger = logger
        self.grace = grace
    }

    /// What one run deleted.
    public struct Outcome: Sendable, Equatable {
        /// Bundle ids deleted, per customer.
        public var bundles: [String: [UUID]] = [:]
        public var files = 0
    }

    public func run(now: Date = Date()) async throws(SupportStoreError) -> Outcome {
        var outcome = Outcome()
        for customer in try await database.customers() {
            guard let keep = configuration.keep(customer: customer.name) else { continue }
            let before = now.addingTimeInterval(-keep)
            let deleted = try await database.prune(customer: customer.name, before: before)
            let history = try await database.pruneHistory(customer: customer.name, before: before)
            if history.notifications + history.cases > 0 {
                logger.notice("retention deleted \(history.notifications) notification(s) and \(history.cases) closed case(s)", metadata: [
                    "customer": "\(customer.name)", "keep-days": "\(Int(keep / 86400))",
                ])
            }
            guard !deleted.isEmpty else { continue }
            outcome.bundles[customer.name] = deleted.map(\.id)
            logger.notice("retention deleted \(deleted.count) bundle(s)", metadata: [
                "customer": "\(customer.name)", "keep-days": "\(Int(keep / 86400))",
            ])
        }
        outcome.files = try await files.removeUnreferenced(database: database, grace: grace, now: now)
        if outcome.files > 0 { logger.notice("removed \(outcome.files) unreferenced bundle file(s)") }
        return outcome
    }
}
