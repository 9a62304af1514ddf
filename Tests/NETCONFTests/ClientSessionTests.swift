import NETCONF
import Testing
import XML

/// The client session state machine, fed bytes with no I/O.
@Suite struct ClientSessionTests {
    let serverHello11 = FrameEncoder.encode("""
        <hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>
        <capability>urn:ietf:params:netconf:base:1.0</capability><capability>urn:ietf:params:netconf:base:1.1</capability>
        </capabilities><session-id>42</session-id></hello>
        """, mode: .endOfMessage)

    func established(framing expected: FramingMode = .chunked) throws -> ClientSession {
        var session = ClientSession(peer: "192.0.2.1:830")
        let events = try session.receive(serverHello11)
        guard case let .established(hello)? = events.first else { Issue.record("no hello event"); return session }
        #expect(hello.sessionID == "42")
        #expect(session.framing == expected)
        return session
    }

    @Test func helloNegotiatesChunkedFramingOnlyWhenBothOfferIt() throws {
        _ = try established()
        var old = ClientSession(peer: "p", capabilities: [NETCONFNamespace.base10])
        _ = try old.receive(serverHello11)
        #expect(old.framing == .endOfMessage)
    }

    /// A device that answers its hello with something else is named in the error, as every
    /// other error of the session names it.
    @Test func aWrongHelloNamesTheDevice() {
        for message in ["<rpc-reply message-id=\"1\"><ok/></rpc-reply>", "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities/></hello>"] {
            var session = ClientSession(peer: "edge-r1 (192.0.2.1:830)")
            do {
                _ = try session.receive(FrameEncoder.encode(message, mode: .endOfMessage))
                Issue.record("accepted as a hello: \(message)")
            } catch {
                #expect("\(error)".contains("edge-r1 (192.0.2.1:830)"), "\(error)")
            }
        }
    }

    @Test func realJunosHelloWithBannerCommentsAndPrefixes() throws {
        let transcript = try TestSupportBytes.fixture("netconf-session/rjmcp__vsrx-standalone-eom-transcript.xml")
        var session = ClientSession(peer: "vsrx:830")
        let events = try session.receive(transcript.prefix(upTo: transcript.firstRange(of: Array("]]>]]>".utf8))!.upperBound))
        guard case let .established(hello)? = events.first else { Issue.record("no hello"); return }
        #expect(hello.capabilities.contains(NETCONFNamespace.base10))
        #expect(hello.capabilities.contains("urn:ietf:params:netconf:capability:candidate:1.0"))
        #expect(session.framing == .endOfMessage)
    }

    @Test func repliesAreMatchedByMessageID() throws {
        var session = try established()
        let first = try session.frame(.junos("get-software-information"))
        let second = try session.frame(.junos("get-chassis-inventory"))
        #expect(first.messageID == "1" && second.messageID == "2")
        #expect(String(decoding: first.bytes, as: UTF8.self).contains("<rpc xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"1\"><get-software-information/></rpc>"))
        // Replies arrive out of order; each goes to its request.
        let replies = FrameEncoder.encode(#"<rpc-reply message-id="2"><chassis-inventory/></rpc-reply>"#, mode: .chunked)
            + FrameEncoder.encode(#"<nc:rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><software-information/></nc:rpc-reply>"#, mode: .chunked)
        let events = try session.receive(replies)
        let names = events.compactMap { if case let .reply(_, name) = $0 { return name } else { return nil } }
        #expect(names == ["get-chassis-inventory", "get-software-information"])
        #expect(session.outstanding == nil)
    }

    @Test func rpcErrorsAndWarningsAreKeptOnTheReply() throws {
        var session = try established()
        _ = try session.frame(.junos("get-configuration"))
        let reply = FrameEncoder.encode("""
            <rpc-reply message-id="1"><rpc-error><error-type>protocol</error-type><error-tag>operation-failed</error-tag>
            <error-severity>warning</error-severity><error-message>
            statement not found</error-message></rpc-error><configuration/></rpc-reply>
            """, mode: .chunked)
        guard case let .reply(r, _)? = try session.receive(reply).first else { Issue.record("no reply"); return }
        #expect(r.errors.isEmpty)
        #expect(r.warnings.map(\.message) == ["statement not found"])
        #expect(r.data.map(\.name) == ["configuration"])
    }

    @Test func malformedReplyNamesMessageIDLineAndColumn() throws {
        var session = try established()
        _ = try session.frame(.junos("get-software-information"))
        _ = try session.frame(.junos("get-chassis-inventory"))
        let bad = FrameEncoder.encode("<rpc-reply message-id=\"1\">\n<a>\n</b></rpc-reply>", mode: .chunked)
        #expect {
            _ = try session.receive(bad)
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("192.0.2.1:830: reply to message-id 1 is not well-formed XML at line 3, column") && text.contains("mismatch")
        }
    }

    @Test func unknownMessageIDIsAnError() throws {
        var session = try established()
        _ = try session.frame(.junos("get-software-information"))
        #expect(throws: NETCONFError.unknownMessageID(peer: "192.0.2.1:830", "99")) {
            _ = try session.receive(FrameEncoder.encode(#"<rpc-reply message-id="99"><ok/></rpc-reply>"#, mode: .chunked))
        }
    }

    @Test func replyWithoutMessageIDGoesToTheOnlyOutstandingRequest() throws {
        var session = try established()
        _ = try session.frame(.junos("get-software-information"))
        let events = try session.receive(FrameEncoder.encode("<rpc-reply><rpc-error><error-message>x</error-message></rpc-error></rpc-reply>", mode: .chunked))
        guard case let .reply(_, name)? = events.first else { Issue.record("no reply"); return }
        #expect(name == "get-software-information")
    }

    @Test func notificationsAreIgnoredAndFramingErrorsNameThePeer() throws {
        var session = try established()
        #expect(try session.receive(FrameEncoder.encode("<notification><eventTime>now</eventTime></notification>", mode: .chunked)).isEmpty)
        #expect {
            _ = try session.receive(Array("garbage".utf8))
        } throws: { "\($0)".hasPrefix("192.0.2.1:830: chunked framing broken at byte") }
    }

    @Test func requestsAreRefusedBeforeHello() {
        var session = ClientSession(peer: "p")
        #expect(throws: NETCONFError.sessionNotEstablished) { _ = try session.frame(.junos("x")) }
    }

    @Test func requestParsing() throws {
        #expect(try RPCRequest.parse("get-chassis-inventory").body == "<get-chassis-inventory/>")
        #expect(try RPCRequest.parse(#"<get-configuration format="text"/>"#).name == "get-configuration")
        #expect(RPCRequest.command("show chassis hardware").body == #"<command format="xml">show chassis hardware</command>"#)
        #expect(RPCRequest.command("show log messages | match \"a<b\"").body.contains("a&lt;b"))
        #expect(throws: NETCONFError.self) { try RPCRequest.parse("<unclosed>") }
        #expect(throws: NETCONFError.self) { try RPCRequest.parse("show version") }
    }

    @Test func serverSessionParsesHelloAndRPCs() throws {
        var server = ServerSession(capabilities: [NETCONFNamespace.base10, NETCONFNamespace.base11], sessionID: "7")
        var client = ClientSession(peer: "sim")
        // Run the two state machines against each other, one byte at a time.
        var serverEvents: [ServerSessionEvent] = []
        for byte in client.helloBytes() { serverEvents += try server.receive([byte]) }
        for byte in server.helloBytes() { _ = try client.receive([byte]) }
        #expect(client.framing == .chunked && server.framing == .chunked)
        let request = try client.frame(.junos("get-system-uptime-information"))
        for byte in request.bytes { serverEvents += try server.receive([byte]) }
        guard case let .rpc(id, operation)? = serverEvents.last else { Issue.record("no rpc"); return }
        #expect(id == "1")
        #expect(operation.name == "get-system-uptime-information")
        let reply = server.frame(Array(#"<rpc-reply message-id="1"><system-uptime-information/></rpc-reply>"#.utf8))
        var replies: [ClientSessionEvent] = []
        for byte in reply { replies += try client.receive([byte]) }
        #expect(replies.count == 1)
    }
}
