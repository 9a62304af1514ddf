import Foundation
import Junos
import Testing
import TestSupport
import XML

/// Hand-made replies for what the captures do not show: malformed values, prefixes, comments,
/// multi-RE sections, and core-dump listings with files.
@Suite struct HealthFactsTests {
    static func reply(_ xml: String) throws -> JunosReply { try JunosReply(bytes: Array(xml.utf8)) }

    @Test func environmentCarriesClassForwardAndKeepsSections() throws {
        let r = EnvironmentReport.parse(try Self.reply("""
        <rpc-reply xmlns:junos="http://xml.juniper.net/junos/*/junos"><multi-routing-engine-results>
          <multi-routing-engine-item><re-name>fpc0</re-name><environment-information>
            <environment-item><name>PSU 0</name><class>Power</class><status>Failed</status></environment-item>
            <environment-item><name>CPU</name><class>Temp</class><status>OK</status>
              <temperature junos:celsius="45">45 degrees C / 113 degrees F</temperature></environment-item>
            <environment-item><name>ASIC</name><status>OK</status><!-- note -->
              <temperature>
                 51 degrees C / 123 degrees F
              </temperature></environment-item>
            <environment-item><name>Fan 0</name><class>Fans</class><status>OK</status><comment>Spinning at normal speed</comment></environment-item>
            <environment-item><status>OK</status><temperature celsius="x1">junk</temperature></environment-item>
          </environment-information></multi-routing-engine-item>
          <multi-routing-engine-item><re-name>fpc1</re-name><environment-information/></multi-routing-engine-item>
        </multi-routing-engine-results></rpc-reply>
        """))
        #expect(r.sections.map(\.routingEngine) == ["fpc0", "fpc1"])
        let s = r.sections[0].sensors
        #expect(s.count == 5)
        #expect(s[0].isFaulty && !s[1].isFaulty)
        #expect(s[1].celsius == 45)
        #expect(s[2].sensorClass == "Temp" && !s[2].classStated && s[2].celsius == 51)
        #expect(s[2].temperatureText == "51 degrees C / 123 degrees F")
        #expect(s[3].comment == "Spinning at normal speed")
        #expect(s[4].name == "" && s[4].celsius == nil && s[4].sensorClass == "Fans")
        #expect(r.sections[1].sensors.isEmpty)
    }

    @Test func alarmCountAndListCanDisagree() throws {
        let r = AlarmReport.parse(try Self.reply(String(decoding: Fixtures.bytes("get-alarm-information/jsnapy__one-minor-plane-offline.xml"), as: UTF8.self)))
        let s = try #require(r.sections.first)
        #expect(s.activeAlarmCount == 2)
        #expect(s.alarms.count == 1)
        #expect(s.alarms[0].timeText == "2019-12-19 14:03:37 CEST")
        #expect(s.alarms[0].timeSeconds == 1532001817)
        let none = AlarmReport.parse(try Self.reply("<alarm-information><alarm-summary><no-active-alarms/></alarm-summary></alarm-information>"))
        #expect(none.sections[0].noActiveAlarms && none.sections[0].activeAlarmCount == nil && none.alarms.isEmpty)
    }

    @Test func storageMalformedNumbersKeepTheirText() throws {
        let r = StorageReport.parse(try Self.reply("""
        <system-storage-information><filesystem>
          <filesystem-name>/dev/x</filesystem-name>
          <total-blocks format="1.2G"> 6r75</total-blocks>
          <used-blocks junos:format="4F" xmlns:junos="urn:x">100</used-blocks>
          <available-blocks/>
          <used-percent>12x</used-percent>
        </filesystem><filesystem/></system-storage-information>
        """))
        let fs = r.filesystems[0]
        #expect(fs.total.blocks == nil && fs.total.text == "6r75" && fs.total.formatted == "1.2G")
        #expect(fs.total.bytes == 1_288_490_189, "falls back to the formatted size")
        #expect(fs.used.blocks == 100 && fs.used.bytes == 51_200 && fs.used.formatted == "4F")
        #expect(fs.available == StorageReport.Size())
        #expect(fs.usedPercent == nil && fs.mountedOn == nil)
        #expect(r.filesystems[1].name == "")
    }

    @Test func coreDumpsWithFiles() throws {
        let r = CoreDumpReport.parse(try Self.reply("""
        <rpc-reply xmlns:junos="http://xml.juniper.net/junos/21.4R3/junos">
        <multi-routing-engine-results><multi-routing-engine-item><re-name>re0</re-name>
        <directory-list root-path="/var/crash/*core*" junos:style="lacking-output">
          <directory>
            <directory-name>/var/crash</directory-name>
            <file-information>
              <file-name>/var/crash/core-rpd.225.pe4.1760021290</file-name>
              <file-permissions junos:format="-rw-------">384</file-permissions>
              <file-links>1</file-links><file-owner>root</file-owner><file-group>wheel</file-group>
              <file-size>1084563456</file-size>
              <file-date junos:format="Oct 9  14:48">1760021290</file-date>
            </file-information>
            <file-information><file-name>core.chassisd.0</file-name><file-size>12x</file-size>
              <file-date junos:seconds="1700000000">Nov 14 2023</file-date></file-information>
          </directory>
          <output>/var/tmp/*core*: No such file or directory</output>
        </directory-list></multi-routing-engine-item></multi-routing-engine-results></rpc-reply>
        """))
        let s = try #require(r.sections.first)
        #expect(s.routingEngine == "re0")
        #expect(s.files.count == 2)
        #expect(s.files[0] == CoreDumpReport.CoreFile(name: "/var/crash/core-rpd.225.pe4.1760021290", size: 1_084_563_456,
                                                    dateText: "Oct 9  14:48", dateSeconds: 1_760_021_290,
                                                    permissions: "-rw-------", owner: "root"))
        #expect(s.files[1].name == "/var/crash/core.chassisd.0" && s.files[1].size == nil)
        #expect(s.files[1].dateSeconds == 1_700_000_000 && s.files[1].dateText == "Nov 14 2023")
        #expect(s.messages == ["/var/tmp/*core*: No such file or directory"])
    }

    @Test func noCoreDumpsIsAnEmptyListNotAnError() throws {
        let r = try CoreDumpReport.parse(bytes: Fixtures.bytes("get-system-core-dumps/pyez__vsrx-12.1X46-no-cores.xml"),
                                         rpc: "get-system-core-dumps")
        #expect(r.files.isEmpty)
        #expect(r.sections.count == 1 && r.sections[0].messages.count == 5)
    }

    @Test func uptimeFallsBackAndToleratesJunk() throws {
        let r = UptimeReport.parse(try Self.reply("""
        <system-uptime-information>
          <time-source>
            NTP CLOCK
          </time-source>
          <system-booted-time><date-time seconds="100">then</date-time><time-length seconds="3600">01:00:00</time-length></system-booted-time>
          <uptime-information><active-user-count>n/a</active-user-count><load-average-1>0.5x</load-average-1></uptime-information>
        </system-uptime-information>
        """))
        let s = try #require(r.sections.first)
        #expect(s.timeSource == "NTP CLOCK")
        #expect(s.uptimeSeconds == 3600, "from the boot time's length when up-time is missing")
        #expect(s.systemBooted == UptimeReport.Timestamp(text: "then", seconds: 100))
        #expect(s.activeUsers == nil && s.loadAverage1 == nil && s.currentTime == nil && s.lastConfiguredBy == nil)
    }

    @Test func interfacesTerseWrappedValues() throws {
        let r = try InterfaceReport.parse(bytes: Fixtures.bytes("get-interface-information/ksator__ex4200-terse-newline-wrapped.xml"),
                                          rpc: "get-interface-information")
        let ifd = try #require(r.interfaces.first)
        #expect(ifd.name == "ge-0/0/0" && ifd.adminStatus == "up" && !ifd.isDownButEnabled)
        #expect(ifd.logicalInterfaces.first?.addresses == [.init(family: "inet", local: "192.168.10.1/31")])
        #expect(r.sections[0].style == "terse")
    }

    @Test func everyHealthFixtureParsesThroughTheThrowingEntryPoint() throws {
        for kind in [FactKind.environment, .chassisAlarms, .systemAlarms, .storage, .coreDumps, .uptime, .interfaces, .configuration] {
            for url in try Fixtures.files(in: kind.rpc) {
                var facts = DeviceFacts()
                let reply = try JunosReply(bytes: Array(Data(contentsOf: url)))
                #expect(FactKind.detect(reply) == (kind == .systemAlarms ? .chassisAlarms : kind), "\(url.lastPathComponent)")
                try facts.absorb(reply, as: kind)
                #expect(facts.parseErrors.isEmpty)
            }
        }
    }
}
