import XML

/// Protocol-level failures. Messages start with the peer (`127.0.0.5:830: ...`) so that a line in
/// a log or on stderr says which device it is about.
public enum NETCONFError: Error, Equatable, Sendable, CustomStringConvertible {
    case timeout(peer: String, rpc: String, seconds: Double)
    case idle(peer: String, rpc: String, seconds: Double, bytesReceived: Int)
    case malformedReply(peer: String, messageID: String?, XMLError)
    case framing(peer: String, FramingError)
    case closedByPeer(peer: String, waitingFor: String, bytesReceived: Int)
    case unexpectedMessage(String)
    case unknownMessageID(peer: String, String)
    case invalidRequest(String)
    case sessionNotEstablished
    case busy

    public var description: String {
        switch self {
        case let .timeout(peer, rpc, seconds):
            return "\(peer): no reply to \(rpc) within \(formatSeconds(seconds))"
        case let .idle(peer, rpc, seconds, bytes):
            return "\(peer): the device sent nothing for \(formatSeconds(seconds)) while \(rpc) was outstanding (after \(bytes) bytes of the reply)"
        case let .malformedReply(peer, id, error):
            let what = id.map { "reply to message-id \($0)" } ?? "message"
            if case let .malformed(line, column, message) = error {
                return "\(peer): \(what) is not well-formed XML at line \(line), column \(column): \(message)"
            }
            return "\(peer): \(what) is invalid: \(error)"
        case let .framing(peer, error):
            return "\(peer): \(error)"
        case let .closedByPeer(peer, waitingFor, bytes):
            return bytes > 0
                ? "\(peer): the device closed the session in the middle of the reply to \(waitingFor) (after \(bytes) bytes)"
                : "\(peer): the device closed the session while \(waitingFor) was outstanding"
        case let .unexpectedMessage(text):
            return text
        case let .unknownMessageID(peer, id):
            return "\(peer): reply with message-id \(id) matches no request sent"
        case let .invalidRequest(text):
            return "invalid request: \(text)"
        case .sessionNotEstablished:
            return "NETCONF session is not established (no hello exchanged, or already closed)"
        case .busy:
            return "another RPC is already in progress on this NETCONF session"
        }
    }
}

func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
}

/// What the client session learned from received bytes.
public enum ClientSessionEvent: Sendable {
    /// The server's hello arrived; framing is now negotiated.
    case established(Hello)
    /// A reply to the request with this name.
    case reply(RPCReply, request: String)
}

/// The client side of a NETCONF session as a pure state machine: it frames what to send and is fed
/// received bytes, from which it returns events. No I/O; ``NETCONFClient`` drives it over a transport.
public struct ClientSession: Sendable {
    public enum State: Sendable, Equatable { case awaitingHello, established, closed }

    public private(set) var state: State = .awaitingHello
    public let localHello: Hello
    public private(set) var remoteHello: Hello?
    public let peer: String
    private var decoder: FrameDecoder
    private var nextMessageID = 1
    /// Outstanding requests in the order sent: (message-id, request name).
    private var pending: [(id: String, name: String)] = []

    public init(peer: String,
                capabilities: [String] = [NETCONFNamespace.base10, NETCONFNamespace.base11],
                maximumMessageSize: Int = FrameDecoder.defaultMaximumMessageSize) {
        self.peer = peer
        localHello = Hello(capabilities: capabilities)
        decoder = FrameDecoder(mode: .endOfMessage, maximumMessageSize: maximumMessageSize)
    }

    /// The framing in use (end-of-message until the hellos are exchanged).
    public var framing: FramingMode { decoder.mode }

    /// The name of the oldest outstanding request, if any.
    public var outstanding: String? { pending.first?.name }

    /// Bytes received and not yet part of a complete message (how far into a reply we are).
    public var bufferedByteCount: Int { decoder.bufferedByteCount }

    /// The client hello, always end-of-message framed (RFC 6242 section 4.1).
    public func helloBytes() -> [UInt8] {
        FrameEncoder.encode(localHello.xml(), mode: .endOfMessage)
    }

    /// Frames `request` with the next message-id.
    public mutating func frame(_ request: RPCRequest) throws(NETCONFError) -> (messageID: String, bytes: [UInt8]) {
        guard state == .established else { throw .sessionNotEstablished }
        let id = String(nextMessageID)
        nextMessageID += 1
        pending.append((id, request.name))
        let xml = "<rpc xmlns=\"\(NETCONFNamespace.base)\" message-id=\"\(id)\">\(request.body)</rpc>"
        return (id, FrameEncoder.encode(xml, mode: decoder.mode))
    }

    /// Feeds received bytes; returns the events they complete.
    public mutating func receive(_ bytes: some Sequence<UInt8>) throws(NETCONFError) -> [ClientSessionEvent] {
        append(bytes)
        var events: [ClientSessionEvent] = []
        while let message = try nextMessage() {
            if let event = try handle(message) { events.append(event) }
        }
        return events
    }

    /// ``receive(_:)`` in two steps, for a driver that must do something between a message's
    /// arrival and its parse (reserve memory for a large one): feed the bytes, then take each
    /// complete message and hand it to ``handle(_:)``.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        decoder.append(bytes)
    }

    /// The next complete message, unparsed; nil when none is complete yet.
    public mutating func nextMessage() throws(NETCONFError) -> [UInt8]? {
        do { return try decoder.nextMessage() } catch { throw .framing(peer: peer, error) }
    }

    /// The transport reached end of stream.
    public mutating func receivedEndOfStream() {
        state = .closed
    }

    /// Parses one message from ``nextMessage()`` and returns what it means.
    public mutating func handle(_ message: [UInt8]) throws(NETCONFError) -> ClientSessionEvent? {
        // Junos may send whitespace between messages: skip messages that are only that.
        if message.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
        let document: XMLDocument
        do {
            document = try XMLDocument(bytes: message)
        } catch {
            throw .malformedReply(peer: peer, messageID: state == .established ? pending.first?.id : nil, error)
        }
        switch state {
        case .awaitingHello:
            let hello: Hello
            do {
                hello = try Hello(document: document)
            } catch .unexpectedMessage(let text) {
                // The error names the device, as every other of this session does.
                throw .unexpectedMessage("\(peer): \(text)")
            }
            guard hello.capabilities.contains(NETCONFNamespace.base10) || hello.capabilities.contains(NETCONFNamespace.base11) else {
                throw .unexpectedMessage("\(peer): server hello offers neither base:1.0 nor base:1.1")
            }
            remoteHello = hello
            decoder.mode = Hello.negotiatedFraming(local: localHello.capabilities, remote: hello.capabilities)
            state = .established
            return .established(hello)
        case .established:
            let root = document.root
            if root.name == "notification" { return nil }
            guard root.name == "rpc-reply" else {
                throw .unexpectedMessage("\(peer): expected <rpc-reply>, received <\(root.name)>")
            }
            let reply = RPCReply(raw: message, document: document)
            let index: Int
            if let id = reply.messageID {
                guard let found = pending.firstIndex(where: { $0.id == id }) else {
                    throw .unknownMessageID(peer: peer, id)
                }
                index = found
            } else if pending.count == 1 {
                // Some Junos releases omit message-id on errors about the request itself.
                index = 0
            } else {
                throw .unexpectedMessage("\(peer): <rpc-reply> without message-id while \(pending.count) requests are outstanding")
            }
            let request = pending.remove(at: index)
            return .reply(reply, request: request.name)
        case .closed:
            return nil
        }
    }
}
