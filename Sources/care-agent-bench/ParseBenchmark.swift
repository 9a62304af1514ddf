import CLibXML2
import Foundation
import Junos
import XML

/// Parse throughput of the Junos parsers against raw libxml2 on the same bytes, measured in the
/// same run, so the ratio holds whatever the machine.
struct ParseBenchmark {
    struct Input {
        var name: String
        var bytes: [UInt8]
        var kind: FactKind
    }

    struct Result {
        var name: String
        var size: Int
        var baselineMBps: Double
        var fullMBps: Double
        var ratio: Double { fullMBps / baselineMBps }
    }

    /// Runs `body` repeatedly for at least `seconds` (and at least `minimum` times); returns MB/s.
    static func throughput(bytes: Int, seconds: Double, minimum: Int = 3, _ body: () -> Void) -> Double {
        body() // warm-up
        let clock = ContinuousClock()
        var iterations = 0
        let start = clock.now
        var elapsed: Duration = .zero
        repeat {
            body()
            iterations += 1
            elapsed = clock.now - start
        } while elapsed < .seconds(seconds) || iterations < minimum
        let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(bytes) * Double(iterations) / secs / 1_000_000
    }

    /// libxml2 alone: parse with the same options XMLDocument uses, then free.
    static func rawLibxml2(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                let flags = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue
                    | XML_PARSE_NOCDATA.rawValue | XML_PARSE_HUGE.rawValue | XML_PARSE_COMPACT.rawValue | XML_PARSE_NOBLANKS.rawValue)
                let doc = xmlReadMemory(chars.baseAddress, Int32(chars.count), "bench.xml", nil, flags)
                xmlFreeDoc(doc)
            }
        }
    }

    /// The agent's path: parse, unwrap the reply, build the typed fact.
    static func full(_ input: Input) {
        guard let reply = try? JunosReply(bytes: input.bytes) else { fatalError("benchmark input \(input.name) does not parse") }
        var facts = DeviceFacts()
        do { try facts.absorb(reply, as: input.kind) } catch { fatalError("\(input.name): \(error)") }
    }

    static func run(fixtures: URL, seconds: Double, only: String? = nil) -> [Result] {
        func load(_ path: String) -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: fixtures.appendingPathComponent(path).path) else {
                fatalError("cannot read fixture \(path) under \(fixtures.path)")
            }
            return Array(data)
        }
        let inventory = load("get-chassis-inventory/pyez__mx480-15.1F5-mpc-optics.xml")
        let configuration = load("get-configuration/rjmcp__vsrx-24.4-cluster-node-groups.xml")
        let inputs = [
            Input(name: "inventory MX480 (largest inventory fixture)", bytes: inventory, kind: .inventory),
            Input(name: "configuration vSRX cluster (largest configuration fixture)", bytes: configuration, kind: .configuration),
            Input(name: "configuration applying a group below the top level", bytes: load("get-configuration/napalm__bgp-groups-fragment.xml"), kind: .configuration),
            Input(name: "configuration 50 MB (real stanzas repeated)", bytes: bigConfiguration(from: load("get-configuration/ksator__ex4300-15.1R5-sha256crypt.xml")), kind: .configuration),
        ]
        return inputs.filter { only == nil || $0.name.contains(only!) }.map { input in
            // Alternate short rounds of both and keep each one's best: other load on the machine
            // then hits both sides alike instead of skewing the ratio.
            var baseline = 0.0, fullRate = 0.0
            for _ in 0..<5 {
                baseline = max(baseline, throughput(bytes: input.bytes.count, seconds: seconds / 5) { rawLibxml2(input.bytes) })
                fullRate = max(fullRate, throughput(bytes: input.bytes.count, seconds: seconds / 5) { full(input) })
            }
            return Result(name: input.name, size: input.bytes.count, baselineMBps: baseline, fullMBps: fullRate)
        }
    }

    /// A 50 MB configuration: the fixture's `<interfaces>` children repeated under one root.
    static func bigConfiguration(from fixture: [UInt8]) -> [UInt8] {
        let text = String(decoding: fixture, as: UTF8.self)
        guard let open = text.range(of: "<interfaces>"), let close = text.range(of: "</interfaces>") else {
            fatalError("fixture has no <interfaces> stanza")
        }
        let stanza = String(text[open.upperBound..<close.lowerBound])
        var out = "<rpc-reply xmlns:junos=\"http://xml.juniper.net/junos/15.1R5/junos\"><configuration><system><host-name>bench</host-name></system><interfaces>"
        let target = 50 * 1024 * 1024
        out.reserveCapacity(target + 1024)
        while out.utf8.count < target { out += stanza }
        out += "</interfaces><protocols><bgp><group><name>core</name></group></bgp></protocols></configuration></rpc-reply>"
        return Array(out.utf8)
    }
}
