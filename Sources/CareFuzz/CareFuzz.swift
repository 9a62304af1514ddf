import Bundle
import Junos
import SSH
import XML

/// Fuzz targets for what a hostile device or bundle controls, beside NETCONFFuzz (framing):
/// `xml` (the XML document, reply sections, every fact parser, XML redaction), `redact` (curly
/// text and set-form redaction and the text configuration reader), `bundle` (the bundle
/// reader, whole and streaming: gzip, tar, manifest, signature) and `ssh-offer` (a server's identification and
/// key-exchange init, fed in pieces as a socket would deliver them). `CARE_FUZZ_TARGET` picks one. Built with
/// `-sanitize=fuzzer -DFUZZING` libFuzzer drives it (scripts/fuzz-all.sh); otherwise it replays
/// files: `CareFuzz TARGET PATH...` (crash reproducers, Tests/FuzzRegressions).
enum FuzzTarget: String, CaseIterable {
    case xml, redact, bundle
    case sshOffer = "ssh-offer"

    func exercise(_ bytes: [UInt8]) {
        switch self {
        case .xml:
            if let reply = try? JunosReply(bytes: bytes) {
                _ = FactKind.detect(reply)
                for kind in FactKind.allCases {
                    var facts = DeviceFacts()
                    try? facts.absorb(reply, as: kind)
                }
            }
            _ = try? ConfigurationRedactor().redact(xml: bytes)
        case .redact:
            let text = String(decoding: bytes, as: UTF8.self)
            let redactor = ConfigurationRedactor()
            _ = redactor.redact(text: text)
            _ = ConfigurationTree(text: text)
            _ = try? ConfigurationTree(checkingText: text)
            _ = redactor.redactTokens(in: text)
        case .bundle:
            // Both readers: the support intake's streaming one must accept exactly what the
            // whole read accepts (a disagreement is a crash for the fuzzer to keep).
            let limits = BundleReader.Limits(maximumFileSize: 4 << 20, maximumUnpackedSize: 16 << 20)
            let whole = (try? BundleReader(limits: limits).read(bytes: bytes)) != nil
            let streamed = (try? BundleReader(limits: limits, retainsContents: false).read(bytes: bytes)) != nil
            if whole != streamed { fatalError("the whole read \(whole ? "accepts" : "refuses") a bundle the streaming read \(streamed ? "accepts" : "refuses")") }
        case .sshOffer:
            // The first byte sets the piece size: the reader must not depend on how reads split.
            guard let first = bytes.first else { return }
            var reader = SSHAlgorithmOffer.Reader()
            var rest = bytes.dropFirst()
            while !rest.isEmpty {
                let piece = rest.prefix(Int(first) + 1)
                rest = rest.dropFirst(piece.count)
                guard let offer = try? reader.feed(piece) else { return }
                if offer != nil { return }
            }
        }
    }
}

#if FUZZING
import FuzzDriver
import Glibc

let selected: FuzzTarget = {
    let name = getenv("CARE_FUZZ_TARGET").map { String(cString: $0) } ?? "xml"
    guard let target = FuzzTarget(rawValue: name) else { fatalError("CARE_FUZZ_TARGET must be xml, redact, bundle or ssh-offer, not \(name)") }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    selected.exercise(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_cdecl("CareFuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in fuzzOneInput(data, size) }
}
#else
import Foundation

@main
struct CareFuzzReplay {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let first = arguments.first, let target = FuzzTarget(rawValue: first) else {
            FileHandle.standardError.write(Data("usage: CareFuzz xml|redact|bundle|ssh-offer PATH...\n".utf8))
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" }) ?? [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                target.exercise(Array(data))
                count += 1
            }
        }
        print("CareFuzz \(target.rawValue): replayed \(count) input(s) without a crash")
    }
}
#endif
