import ArgumentParser
import Bundle
import Foundation
import Logging
import SupportServer
import SupportStore

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the HTTPS intake: PUT <base-path><bundle file name> with a bearer token.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "care-support")
        let configuration = try options.load()
        do {
            try configuration.validateForServing()
        } catch {
            throw CommandFailure(error.description)
        }
        let (_, database) = try await options.openStore(logger: logger)
        let files: BundleFileStore
        do {
            files = try BundleFileStore(directory: configuration.store.directory)
        } catch {
            await database.close()
            throw CommandFailure(error.description)
        }
        // Bodies of uploads cut off by a crash or restart: their agents send them again.
        let swept = files.sweepIncoming(olderThan: 3600)
        if swept > 0 { logger.notice("removed \(swept) abandoned upload(s) from \(files.incomingDirectory)") }
        let intake = BundleIntake(database: database, files: files, maxBundleSize: configuration.server.maxBundleSize,
                                  enrollment: configuration.server.enrollment, logger: logger)
        // The served reports: without reference data the intake still runs, and the report pages say why not.
        var reports: CustomerReports?
        do {
            reports = CustomerReports(database: database, files: files,
                                      data: try CustomerReports.referenceData(explicit: nil, settings: configuration.reports),
                                      settings: configuration.reports)
        } catch {
            logger.warning("reports are not served: \(error)")
        }
        let server = configuration.server
        // Retention at start and hourly (several intakes may all run it: deleting is idempotent).
        let retention = Retention(configuration: configuration, database: database, files: files, logger: logger)
        let pruning = Task {
            while !Task.isCancelled {
                do {
                    _ = try await retention.run()
                } catch {
                    logger.error("retention failed: \(error)")
                }
                try? await Task.sleep(for: .seconds(3600))
                // Uploads a crash left within the hour before a restart: the sweep at start kept them.
                let swept = files.sweepIncoming(olderThan: 3600)
                if swept > 0 { logger.notice("removed \(swept) abandoned upload(s) from \(files.incomingDirectory)") }
            }
        }
        defer { pruning.cancel() }
        do {
            let application = try IntakeServer.application(configuration: configuration, intake: intake, reports: reports, logger: logger) { port in
                logger.notice("intake listening", metadata: [
                    "address": "\(server.host):\(port)", "base-path": "\(server.basePath)",
                    "database": "\(configuration.store.database)", "directory": "\(configuration.store.directory)",
                ])
            }
            try await application.runService()
        } catch {
            await database.close()
            throw CommandFailure("\(error)")
        }
        await database.close()
    }
}

struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "Each device's latest model, serial, release, last bundle and result.")
    @Option(help: "Only this customer's devices.") var customer: String?
    @Flag(help: "A JSON array, one object per device.") var json = false
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await withStore(options) { _, database in
            if let customer, try await database.customer(named: customer) == nil { throw SupportStoreError.unknownCustomer(customer) }
            let devices = try await database.devices(customer: customer)
            if json { return try printJSON(devices) }
            for device in devices {
                let latest = device.latest
                // Bundle-supplied text: escaped (TerminalText).
                print([device.customer, latest.device, latest.model ?? "-", latest.serial ?? "-", latest.version ?? "-",
                       SupportJSON.time(latest.collected), latest.result].map(TerminalText.escaped).joined(separator: "  "))
            }
        }
    }
}

struct BundlesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bundles", abstract: "Stored bundles, newest first.")
    @Option(help: "Only this customer's bundles.") var customer: String?
    @Option(help: "Only bundles of this device (its name in the agent's inventory).") var device: String?
    @Option(help: "Only the newest this many (a store keeps every device's history).") var limit: Int?
    @Flag(help: "A JSON array, one object per bundle.") var json = false
    @OptionGroup var options: ConfigOption

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit: expected a number of bundles, 1 or more") }
    }

    func run() async throws {
        try await withStore(options) { _, database in
            if let customer, try await database.customer(named: customer) == nil { throw SupportStoreError.unknownCustomer(customer) }
            let bundles = try await database.bundles(customer: customer, device: device, limit: limit, after: nil)
            if json { return try printJSON(bundles) }
            for bundle in bundles {
                print([bundle.id.uuidString, bundle.customer, bundle.device, SupportJSON.time(bundle.collected),
                       bundle.trigger, bundle.result].map(TerminalText.escaped).joined(separator: "  "))
            }
        }
    }
}

struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bundle", abstract: "One stored bundle.", subcommands: [Get.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a stored bundle's file out (then every `care-agent bundle` tool works on it).")
        @Argument(help: "The bundle id (from `care-support bundles`).") var id: String
        @Option(name: .shortAndLong, help: "Where to write it (not overwritten when it exists).") var output: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            guard let uuid = UUID(uuidString: id) else { throw CommandFailure("not a bundle id: \(id)") }
            try await withStore(options) { configuration, database in
                guard let bundle = try await database.bundle(id: uuid) else { throw CommandFailure("no bundle \(id) is stored") }
                let files = try BundleFileStore(directory: configuration.store.directory)
                let source = files.path(sha256: bundle.fileSHA256)
                do {
                    try FileManager.default.copyItem(atPath: source, toPath: output)
                } catch {
                    throw CommandFailure("cannot copy \(source) to \(output): \((error as NSError).localizedDescription)")
                }
                print("wrote \(output) (\(bundle.fileSize) bytes, \(TerminalText.escaped(bundle.device)), collected \(SupportJSON.time(bundle.collected)))")
            }
        }
    }
}

struct CasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cases", abstract: "A customer's cases: incidents its agents caught (event bundles), newest first.",
        discussion: "The intake opens a case when it stores a bundle whose manifest trigger is event. `care-support case close ID` closes one.")
    @Option(help: "The customer.") var customer: String
    @Flag(help: "Closed cases too.") var all = false
    @Flag(help: "A JSON array, one object per case.") var json = false
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await withStore(options) { _, database in
            guard try await database.customer(named: customer) != nil else { throw SupportStoreError.unknownCustomer(customer) }
            let cases = try await database.cases(customer: customer, includeClosed: all)
            if json { return try printJSON(cases) }
            if cases.isEmpty { print(all ? "no cases for \(customer)" : "no open cases for \(customer)") }
            for record in cases {
                print([record.id.uuidString, record.closed.map { "closed " + SupportJSON.time($0) } ?? "open",
                       record.device, record.eventKind, record.eventSource, SupportJSON.time(record.eventTime),
                       "bundle " + record.bundle.uuidString].map(TerminalText.escaped).joined(separator: "  "))
                // Device-supplied text: one line, control characters and bidirectional overrides escaped.
                print("    " + TerminalText.escaped(record.evidence))
            }
        }
    }
}

struct CaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "case", abstract: "One case.", subcommands: [Close.self])

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close an open case.")
        @Argument(help: "The case id (from `care-support cases`).") var id: String
        @Option(help: "Only if it is this customer's case (a guard against a mistyped id).") var customer: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            guard let uuid = UUID(uuidString: id) else { throw CommandFailure("not a case id: \(id)") }
            try await withStore(options) { _, database in
                guard try await database.closeCase(customer: customer, id: uuid, at: Date()) else {
                    throw CommandFailure("no open case \(id)\(customer.map { " of \($0)" } ?? "") (`care-support cases --customer C --all` lists a customer's cases)")
                }
                print("closed case \(uuid.uuidString)")
            }
        }
    }
}
