import ConfigurationSyntax
import SupportServer
import SupportStore
import Foundation
import Reports
import Testing

@Suite struct SupportConfigurationTests {
    func parse(_ text: String) throws(ConfigurationError) -> SupportConfiguration {
        try SupportConfiguration(file: ConfigurationFile(path: "support.conf", text: text, grammar: SupportConfiguration.grammar))
    }

    @Test func readsTheContractsKeysAndDefaults() throws {
        let full = try parse("""
            [server]
            listen = 0.0.0.0:9443
            tls-certificate = /etc/care-support/server.crt
            tls-key = /etc/care-support/server.key
            client-ca = /etc/care-support/clients.crt
            base-path = /care/bundles
            max-bundle-size = 16M
            idle-timeout = 2m

            [store]
            directory = /var/lib/care-support
            database = postgres://care@db.example.net/care
            """)
        #expect(full.server.host == "0.0.0.0" && full.server.port == 9443)
        #expect(full.server.tlsCertificate == "/etc/care-support/server.crt" && full.server.tlsKey == "/etc/care-support/server.key")
        #expect(full.server.clientCA == "/etc/care-support/clients.crt")
        #expect(full.server.basePath == "/care/bundles/")
        #expect(full.server.maxBundleSize == 16 << 20)
        #expect(full.server.idleTimeout == .seconds(120))
        #expect(full.store.database == .postgres(url: "postgres://care@db.example.net/care"))

        let retention = try parse("[store]\ndirectory = /s\nkeep = 400d\n[customer ACME]\nkeep = 12w\n[customer BETA]\nkeep = forever\n")
        #expect(retention.keep(customer: "ACME") == TimeInterval(12 * 7 * 86400))
        #expect(retention.keep(customer: "BETA") == nil)
        #expect(retention.keep(customer: "GAMMA") == TimeInterval(400 * 86400))

        let minimal = try parse("[store]\ndirectory = /srv/care\n")
        #expect(minimal.keep(customer: "ACME") == nil)
        #expect(minimal.server.host == "127.0.0.1" && minimal.server.port == 8443 && minimal.server.basePath == "/bundles/")
        #expect(minimal.server.idleTimeout == .seconds(60))
        #expect(minimal.store.database == .sqlite(path: "/srv/care/support.db"))
        #expect(throws: ConfigurationError.self) { try minimal.validateForServing() }
        #expect(try parse("[server]\nlisten = [::1]:8443\n[store]\ndirectory = /s\n").server.host == "::1")
    }

    @Test(arguments: [
        ("[server]\nlisten = 8443\n[store]\ndirectory = /s\n", "support.conf:2:10: expected HOST:PORT such as 127.0.0.1:8443 or [::]:8443, found \"8443\""),
        ("[server]\ntls-key = server.key\n", "support.conf:2:11: expected an absolute file path, found \"server.key\""),
        ("[store]\ndirectory = /s\ndatabase = mysql://x\n", "support.conf:3:12: expected sqlite:/PATH or postgres://USER@HOST:PORT/DATABASE, found \"mysql://x\""),
        ("[store]\ndirectory = /s\ncolour = blue\n", "support.conf:3:1: unknown key \"colour\" in [store]; expected directory, database or keep"),
        ("[server]\nlisten = 127.0.0.1:1\n", "support.conf: expected [store] directory = DIR (where bundle files are kept)"),
        ("[store]\ndirectory = /s\ndirectory = /t\n", "support.conf:3:1: directory is set twice in [store] (first on line 2)"),
        ("[agent]\n", "support.conf:1:2: expected server, store, customer NAME or reports, found \"agent\""),
        ("[store]\ndirectory = /s\nkeep = a while\n", "support.conf:3:8: expected a retention such as 400d, 12w or forever, found \"a while\""),
        ("[store]\ndirectory = /s\n[customer ACME]\nkeep = 1d\nkeep = 2d\n", "support.conf:5:1: keep is set twice in [customer ACME] (first on line 4)"),
        ("[server]\nbase-path = /a/../b/\n[store]\ndirectory = /s\n", "support.conf:2:13: expected a URL path such as /bundles/, found \"/a/../b/\""),
        ("[server]\nidle-timeout = 0s\n[store]\ndirectory = /s\n", "support.conf:2:16: expected a time from 1s to 60m such as 60s or 2m, found \"0s\""),
        ("[server]\nidle-timeout = forever\n[store]\ndirectory = /s\n", "support.conf:2:16: expected a time from 1s to 60m such as 60s or 2m, found \"forever\""),
        ("[store]\ndirectory = /s\n[reports]\neol-window = soon\n", "support.conf:4:14: expected a number of months (12m) or years (2y), found \"soon\""),
        ("[store]\ndirectory = /s\n[reports]\ncpu-warning = high\n", "support.conf:4:15: expected a whole number from 0 to 100 for cpu-warning, found \"high\""),
        ("[store]\ndirectory = /s\n[reports]\nstorage-warning = 95\n", "support.conf:4:1: [reports]: storage-warning (95) is above storage-critical (90): the warning would never be raised"),
        ("[store]\ndirectory = /s\n[reports]\ndata-directory = data\n", "support.conf:4:18: expected an absolute file path, found \"data\""),
    ])
    func brokenLinesAreReportedAtTheirPlace(text: String, expected: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description == expected)
        }
    }

    @Test func reportSettingsAreRead() throws {
        let configuration = try parse("[store]\ndirectory = /s\n[reports]\ndata-directory = /d\neol-window = 2y\ncpu-warning = 70\nreboot-within-hours = 6\n")
        #expect(configuration.reports.dataDirectory == "/d")
        #expect(configuration.reports.eolWindowMonths == 24)
        #expect(configuration.reports.thresholds.cpuWarningPercent == 70)
        #expect(configuration.reports.thresholds.recentRebootHours == 6)
        #expect(configuration.reports.thresholds.cpuCriticalPercent == HealthThresholds().cpuCriticalPercent)
    }
}
