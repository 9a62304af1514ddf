import NETCONF
import Testing

/// Framing decoders checked byte by byte, many messages per buffer, and on broken input.
@Suite struct FramingTests {
    let messages: [[UInt8]] = [
        Array("<rpc-reply message-id=\"1\"><ok/></rpc-reply>".utf8),
        Array("<rpc-reply message-id=\"2\"><data>]]&gt;]]&gt; and ]] > ]]</data></rpc-reply>".utf8),
        Array("\n<rpc-reply message-id=\"3\">\(String(repeating: "x", count: 5000))</rpc-reply>".utf8),
    ]

    func decodeAll(_ stream: [UInt8], mode: FramingMode, feed: Int) throws -> [[UInt8]] {
        var decoder = FrameDecoder(mode: mode)
        var out: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let end = min(stream.count, offset + feed)
            decoder.append(stream[offset..<end])
            offset = end
            while let message = try decoder.nextMessage() { out.append(message) }
        }
        #expect(decoder.bufferedByteCount == 0)
        return out
    }

    @Test(arguments: [FramingMode.endOfMessage, .chunked])
    func dripFedOneByteAtATime(mode: FramingMode) throws {
        let stream = messages.flatMap { FrameEncoder.encode($0, mode: mode) }
        #expect(try decodeAll(stream, mode: mode, feed: 1) == messages)
    }

    @Test(arguments: [FramingMode.endOfMessage, .chunked])
    func manyMessagesInOneBuffer(mode: FramingMode) throws {
        let stream = (0..<50).flatMap { _ in messages.flatMap { FrameEncoder.encode($0, mode: mode) } }
        let decoded = try decodeAll(stream, mode: mode, feed: stream.count)
        #expect(decoded.count == 150)
        #expect(Array(decoded.prefix(3)) == messages)
    }

    /// A session waits between replies far longer than it receives: once a reply is returned,
    /// small or large, its buffer is given back (hundreds of sessions wait at once).
    @Test(arguments: [FramingMode.endOfMessage, .chunked])
    func aDrainedDecoderHoldsNoBuffer(mode: FramingMode) throws {
        var decoder = FrameDecoder(mode: mode)
        let large = Array("<rpc-reply>\(String(repeating: "y", count: 300_000))</rpc-reply>".utf8)
        for chunk in FrameEncoder.encode(large, mode: mode).chunks(of: 16_384) { decoder.append(chunk) }
        #expect(decoder.heldCapacity >= large.count)
        #expect(try decoder.nextMessage() == large)
        #expect(decoder.heldCapacity == 0)
        // A small reply too; and it still decodes what comes next.
        decoder.append(FrameEncoder.encode(messages[0], mode: mode))
        #expect(try decoder.nextMessage() == messages[0])
        #expect(decoder.heldCapacity == 0)
        // Not drained (part of the next message buffered): the bytes are kept.
        let next = FrameEncoder.encode(messages[1], mode: mode)
        decoder.append(FrameEncoder.encode(messages[0], mode: mode) + next.prefix(5))
        #expect(try decoder.nextMessage() == messages[0])
        #expect(decoder.bufferedByteCount > 0)
        decoder.append(next.dropFirst(5))
        #expect(try decoder.nextMessage() == messages[1])
        #expect(decoder.heldCapacity == 0)
    }

    @Test(arguments: [2, 3, 5, 7, 1000, 4096])
    func arbitrarySplits(feed: Int) throws {
        for mode in [FramingMode.endOfMessage, .chunked] {
            let stream = messages.flatMap { FrameEncoder.encode($0, mode: mode) }
            #expect(try decodeAll(stream, mode: mode, feed: feed) == messages)
        }
    }

    @Test func chunkedMessageSpreadOverManyChunks() throws {
        // As in RFC 6242 section 4.2: one message split into chunks of 4, 18 and the rest.
        let pieces = ["<rpc", " message-id=\"102\"\n", "     xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\n  <close-session/>\n</rpc>\n"]
        let stream = pieces.flatMap { Array("\n#\($0.utf8.count)\n\($0)".utf8) } + Array("\n##\n".utf8)
        #expect(pieces[0].utf8.count == 4 && pieces[1].utf8.count == 18)
        let decoded = try decodeAll(stream, mode: .chunked, feed: 1)
        #expect(decoded.count == 1)
        #expect(String(decoding: decoded[0], as: UTF8.self).hasPrefix("<rpc message-id=\"102\""))
        #expect(String(decoding: decoded[0], as: UTF8.self).hasSuffix("</rpc>\n"))
    }

    @Test func largeMessageIsChunkedAndRestored() throws {
        let big = [UInt8](repeating: 0x41, count: 3 * FrameEncoder.chunkSize + 17)
        let framed = FrameEncoder.encode(big, mode: .chunked)
        // Three full chunks and one of 17 bytes, then the end-of-chunks marker.
        #expect(framed.count == big.count + 3 * "\n#1048576\n".utf8.count + "\n#17\n".utf8.count + "\n##\n".utf8.count)
        var decoder = FrameDecoder(mode: .chunked)
        decoder.append(framed)
        #expect(try decoder.nextMessage() == big)
    }

    @Test(arguments: [
        ("\n#0\n", "invalid chunk size"),
        ("\n#012\nabc", "invalid chunk size"),
        ("#12\nabc", "expected \\n#<size>\\n"),
        ("\n#abc\n", "expected \\n#<size>\\n"),
        ("\n#4294967296\n", "invalid chunk size"),
        ("\n#3\nabc\n#x", "expected \\n#<size>\\n"),
    ])
    func brokenChunkHeaders(input: String, message: String) {
        var decoder = FrameDecoder(mode: .chunked)
        decoder.append(Array(input.utf8))
        #expect {
            while try decoder.nextMessage() != nil {}
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func oversizedMessageIsRefused() {
        var decoder = FrameDecoder(mode: .endOfMessage, maximumMessageSize: 1024)
        decoder.append([UInt8](repeating: 0x20, count: 2048))
        #expect(throws: FramingError.messageTooLarge(limit: 1024)) { _ = try decoder.nextMessage() }
        var chunked = FrameDecoder(mode: .chunked, maximumMessageSize: 1024)
        chunked.append(Array("\n#2000\n".utf8) + [UInt8](repeating: 0x20, count: 2000))
        #expect(throws: FramingError.messageTooLarge(limit: 1024)) { _ = try chunked.nextMessage() }
    }

    @Test func switchingToChunkedAfterHelloKeepsBufferedBytes() throws {
        // The server's hello (end-of-message) and its first chunked reply arrive in one read.
        let stream = FrameEncoder.encode(messages[0], mode: .endOfMessage) + FrameEncoder.encode(messages[1], mode: .chunked)
        var decoder = FrameDecoder(mode: .endOfMessage)
        decoder.append(stream)
        #expect(try decoder.nextMessage() == messages[0])
        decoder.mode = .chunked
        #expect(try decoder.nextMessage() == messages[1])
    }

    @Test func junosSessionTranscriptSplitsIntoHelloAndReplies() throws {
        // A real Junos base:1.0 session (server side), with banner comments before the hello.
        let transcript = try TestSupportBytes.fixture("netconf-session/rjmcp__vsrx-standalone-eom-transcript.xml")
        var decoder = FrameDecoder(mode: .endOfMessage)
        decoder.append(transcript)
        var decoded: [[UInt8]] = []
        while let message = try decoder.nextMessage() { decoded.append(message) }
        #expect(decoded.count >= 2)
        let first = String(decoding: decoded[0], as: UTF8.self)
        #expect(first.contains("<!-- No zombies were killed"))
        #expect(first.contains("<nc:hello"))
    }
}

extension Array {
    func chunks(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min(count, $0 + size)] }
    }
}
