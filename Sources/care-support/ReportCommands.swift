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
        @Option(help: "Output format: text, csv, json, html or cyclonedx (bugs only).") var format: String = "text"
        @Option(help: "Reference data directory (default: the installed share/care-agent/data, or the source tree's data/).") var data: String?
        @Option(help: "Write the report to this file (atomically, mode 0640) instead of standard output.") var out: String?
        @OptionGroup var options: ConfigOption

        func validate() throws {
            guard ReportFormat(rawValue: format) != nil else {
                throw ValidationError("--format \(format): expected \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        var reportFormat: ReportFormat { ReportFormat(rawValue: format) ?? .text }

        func referenceData() throws -> ReferenceData {
            guard let directory = ReferenceData.locate(explicit: data, configured: nil) else {
                throw CommandFailure(ReferenceDataError.notFound.description)
            }
            do { return try ReferenceData.load(directory: directory) } catch { throw CommandFailure("\(error)") }
        }

        /// Each device's two latest bundles (the previous one tells new core dumps), verified
        /// again against the keys trusted for the customer now: a revoked key's bundles drop out.
        func snapshots(readsConfiguration: Bool) async throws -> [(latest: DeviceSnapshot, previous: DeviceSnapshot?)] {
            try await withStore(options) { configuration, database in
                guard try await database.customer(named: customer) != nil else { throw SupportStoreError.unknownCustomer(customer) }
                let keys = try await database.trustedKeys(customer: customer)
                let reader = BundleReader(trust: .keys(keys))
                let files = try BundleFileStore(directory: configuration.store.directory)
                var kept: [String: Int] = [:]
                var snapshots: [DeviceSnapshot] = []
                // Newest first: the first two of each device.
                for bundle in try await database.bundles(customer: customer, device: nil) where kept[bundle.device, default: 0] < 2 {
                    let path = files.path(sha256: bundle.fileSHA256)
                    do {
                        let verified = try reader.read(contentsOf: URL(fileURLWithPath: path))
                        snapshots.append(DeviceSnapshot(bundle: verified, source: "bundle \(bundle.id.uuidString)",
                                                        readsConfiguration: readsConfiguration))
                        kept[bundle.device, default: 0] += 1
                    } catch {
                        FileHandle.standardError.write(Data("care-support: bundle \(bundle.id.uuidString) (\(TerminalText.escaped(bundle.device))): refused: \(error)\n".utf8))
                    }
                }
                guard !snapshots.isEmpty else { throw CommandFailure("customer \(customer) has no stored bundle to report on") }
                return DeviceSnapshot.latestPerDevice(snapshots)
            }
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
            let data = try common.referenceData()
            let report = BugReport(devices: try await common.snapshots(readsConfiguration: true).map(\.latest), data: data)
            try common.emit(ReportRenderer.render(report, as: common.reportFormat))
        }
    }

    struct EOL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "eol", abstract: "End of engineering / support of each device's release, chassis and FRUs.")
        @OptionGroup var common: Common
        @Option(help: "Flag items whose end of support is within this window: 12m (months) or 2y (years).") var within: String = "12m"

        func run() async throws {
            guard let months = LifecycleReport.windowMonths(within) else {
                throw ValidationError("--within \(within): expected a number of months (12m) or years (2y)")
            }
            let data = try common.referenceData()
            let report = LifecycleReport(devices: try await common.snapshots(readsConfiguration: false).map(\.latest), data: data, withinMonths: months)
            do { try common.emit(try ReportRenderer.render(report, as: common.reportFormat)) } catch let error as ReportRenderError {
                throw ValidationError(error.description)
            }
        }
    }

    struct Health: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What is unhealthy now: CPU, memory, storage, alarms, core dumps, reboots, environment, VC and cluster.")
        @OptionGroup var common: Common

        func run() async throws {
            let report = HealthReport(devices: try await common.snapshots(readsConfiguration: false), thresholds: HealthThresholds())
            do { try common.emit(try ReportRenderer.render(report, as: common.reportFormat)) } catch let error as ReportRenderError {
                throw ValidationError(error.description)
            }
        }
    }
}
