import NETCONF

/// Feeds arbitrary bytes to the framing decoders and the client session. Built two ways:
/// with `-sanitize=fuzzer -DFUZZING` libFuzzer drives `LLVMFuzzerTestOneInput`; otherwise this is
/// a replay tool that runs the same function on files (crash reproducers, the seed corpus).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    exercise(bytes)
    return 0
}

func exercise(_ bytes: [UInt8]) {
    // The first byte chooses where to split the stream, so splits are explored too.
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % max(1, bytes.count)
    for mode in [FramingMode.endOfMessage, .chunked] {
        var decoder = FrameDecoder(mode: mode, maximumMessageSize: 1 << 20)
        decoder.append(bytes[..<split])
        var failed = false
        do { while try decoder.nextMessage() != nil {} } catch { failed = true }
        if !failed {
            decoder.append(bytes[split...])
            do { while try decoder.nextMessage() != nil {} } catch {}
        }
    }
    // A client session that has exchanged hellos, fed the input as server output.
    var session = ClientSession(peer: "fuzz", maximumMessageSize: 1 << 20)
    let hello = FrameEncoder.encode("<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities><capability>urn:ietf:params:netconf:base:1.1</capability><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>", mode: .endOfMessage)
    _ = try? session.receive(hello)
    _ = try? session.frame(.junos("get-software-information"))
    _ = try? session.receive(bytes)
    var fresh = ClientSession(peer: "fuzz", maximumMessageSize: 1 << 20)
    _ = try? fresh.receive(bytes)
}

#if FUZZING
import FuzzDriver
@_cdecl("NETCONFFuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in fuzzOneInput(data, size) }
}
#else
import Foundation

@main
struct NETCONFFuzzReplay {
    static func main() throws {
        let paths = CommandLine.arguments.dropFirst()
        for path in paths {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path).map { "\(path)/\($0)" }) ?? [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                exercise(Array(data))
            }
        }
        print("replayed \(paths.count) path(s) without a crash")
    }
}
#endif
