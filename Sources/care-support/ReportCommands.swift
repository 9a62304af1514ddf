import ArgumentParser
import Bundle
import Foundation
import Reports
import SupportServer
import SupportStore

/// `care-support report bugs|eol|health --customer C`: the same reports as `care-agent report`
/// (one implementation, the Reports library) over each device's latest stored bundle of the
/// customer, each bundle read again and verified against the customer's trusted agent keys.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Bug, EOL/EOS/EOE and health reports over a customer's latest stored bundles.",
        subcommands: [Bugs.self, EOL.self, Health.self])

    struct Common: ParsableArguments {
        @Option(help: "The customer whose devices are reported.") var customer: String
        @Option(help: "Output format: text, csv, json, html or cyclonedx (bugs only); notify writes text, json or html.") var format: String = "text"
        @Option(help: "Reference data directory (default: the installed share/care-agent/data, or the source tree's data/).") var data: String?
        @Option(help: "Write the report to this file (atomically, mode 0640) instead of standard output.") var out: String?
        @OptionGroup var options: ConfigOption

        func validate() throws {
            guard ReportFormat(rawValue: format) != nil else {
                throw ValidationError("--format \(format): expected \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        var reportFormat: ReportFormat { ReportFormat(rawValue: format) ?? .text }

        /// Runs `body` with the customer's reports (store open, reference data loaded).
        func withReports<T>(_ body: (CustomerReports) async throws -> T) async throws -> T {
            try await withStore(options) { configuration, database in
                let data: ReferenceData
                do { data = try CustomerReports.referenceData(explicit: self.data, settings: configuration.reports) } catch {
                    throw CommandFailure("\(error)")
                }
                let files = try BundleFileStore(directory: configuration.store.directory)
                return try await body(CustomerReports(database: database, files: files, data: data, settings: configuration.reports))
            }
        }

        /// Each device's latest bundles, refused ones named on standard error.
        func devices(_ reports: CustomerReports, readsConfiguration: Bool) async throws -> CustomerReports.Devices {
            let devices = try await reports.devices(customer: customer, readsConfiguration: readsConfiguration)
            for refused in devices.refused { FileHandle.standardError.write(Data("care-support: \(TerminalText.escaped(refused))\n".utf8)) }
            guard !devices.snapshots.isEmpty else { throw CommandFailure("customer \(customer) has no stored bundle to report on") }
            return devices
        }

        func emit(_ text: String) throws {
            guard let out else {
                FileHandle.standardOutput.write(Data(text.utf8))
                return
            }
            let temporary = out + ".tmp-\(getpid())"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o640]) else {
                throw CommandFailure("cannot write \(temporary)")
            }
            guard rename(temporary, out) == 0 else {
                unlink(temporary)
                throw CommandFailure("cannot write \(out): \(String(cString: strerror(errno)))")
            }
            FileHandle.standardError.write(Data("care-support: wrote \(out)\n".utf8))
        }
    }

    struct Bugs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Which known bugs can hit each device: exposed, not exposed (configuration), possibly exposed.")
        @OptionGroup var common: Common

        func run() async throws {
            let text = try await common.withReports { reports in
                ReportRenderer.render(reports.bugs(try await common.devices(reports, readsConfiguration: true)), as: common.reportFormat)
            }
            try common.emit(text)
        }
    }

    struct EOL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "eol", abstract: "End of engineering / support of each device's release, chassis and FRUs.")
        @OptionGroup var common: Common
        @Option(help: "Flag items whose end of support is within this window: 12m (months) or 2y (years); default [reports] eol-window or 12m.") var within: String?

        func run() async throws {
            var months: Int?
            if let within {
                guard let parsed = LifecycleReport.windowMonths(within) else {
                    throw ValidationError("--within \(within): expected a number of months (12m) or years (2y)")
                }
                months = parsed
            }
            let report = try await common.withReports { reports in
                reports.lifecycle(try await common.devices(reports, readsConfiguration: false), withinMonths: months)
            }
            do { try common.emit(try ReportRenderer.render(report, as: common.reportFormat)) } catch let error as ReportRenderError {
                throw ValidationError(error.description)
            }
        }
    }

    struct Health: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What is unhealthy now: CPU, memory, storage, alarms, core dumps, reboots, environment, VC and cluster.")
        @OptionGroup var common: Common

        func run() async throws {
            let report = try await common.withReports { reports in
                reports.health(try await common.devices(reports, readsConfiguration: false))
            }
            do { try common.emit(try ReportRenderer.render(report, as: common.reportFormat)) } catch let error as ReportRenderError {
                throw ValidationError(error.description)
            }
        }
    }
}

/// `care-support notify --customer C`: what is new for the customer since its last
/// notification (advisories newly hitting a device or no longer, changed verdicts, devices and
/// FRUs newly within the EOL window or past it, new health findings), each item recorded in the
/// store so that it is told once. `--dry-run` shows without recording.
struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "What is new for a customer since its last notification; recorded so each item is told once.")

    @OptionGroup var common: ReportCommand.Common
    @Flag(help: "Show what would be told without recording it.") var dryRun = false

    func validate() throws {
        guard [.text, .json, .html].contains(common.reportFormat) else {
            throw ValidationError("--format \(common.format): notify writes text, json or html")
        }
    }

    func run() async throws {
        let notification = try await common.withReports { reports in
            try await CustomerNotification.make(customer: common.customer, reports: reports, dryRun: dryRun)
        }
        for refused in notification.refused { FileHandle.standardError.write(Data("care-support: \(TerminalText.escaped(refused))\n".utf8)) }
        switch common.reportFormat {
        case .json: try common.emit(try notification.json())
        case .html: try common.emit(notification.html())
        default: try common.emit(notification.text())
        }
    }
}
