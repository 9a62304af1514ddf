import Foundation
import Logging
import NETCONF
import Testing
import TestSupport

/// The process's budget for large replies: a reply's bytes are reserved before its tree is built
/// and released when the reply goes, so that large trees do not pile up past the service's memory.
@Suite struct ReplyMemoryBudgetTests {
    /// Polls `condition` for up to 5 s.
    func eventually(_ condition: () async -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }

    @Test func reservationsWaitTheirTurnAndAreReleasedWithTheirHolder() async throws {
        let budget = ReplyMemoryBudget(bytes: 100)
        var first: ReplyMemoryReservation? = await budget.reserve(60)
        #expect(budget.available == 40)
        let second = Task { await budget.reserve(60).size }
        try await Task.sleep(for: .milliseconds(200))
        #expect(budget.available == 40, "the second waits: 60 more do not fit")
        // A small one does not overtake the waiting larger one.
        let third = Task { await budget.reserve(10).size }
        try await Task.sleep(for: .milliseconds(100))
        #expect(budget.available == 40)
        withExtendedLifetime(first) {}
        first = nil
        #expect(await second.value == 60)
        #expect(await third.value == 10)
        #expect(try await eventually { budget.available == 100 }, "both released when their reservations went")
        // Larger than the whole budget: granted alone, as all of it.
        let huge = await budget.reserve(500)
        #expect(huge.size == 100 && budget.available == 0)
        withExtendedLifetime(huge) {}
    }

    @Test func aCancelledWaitReservesNothing() async throws {
        let budget = ReplyMemoryBudget(bytes: 100)
        var held: ReplyMemoryReservation? = await budget.reserve(100)
        let waiting = Task { await budget.reserve(50).size }
        try await Task.sleep(for: .milliseconds(100))
        waiting.cancel()
        #expect(await waiting.value == 0)
        #expect(budget.available == 0)
        withExtendedLifetime(held) {}
        held = nil
        #expect(try await eventually { budget.available == 100 }, "the cancelled wait took nothing")
    }

    /// Two devices answering with large configurations at once, with room for one: the second
    /// reply's tree is built only once the first reply is gone.
    @Test func aSecondLargeReplyWaitsUntilTheFirstIsReleased() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480-large", under: dir)
        let interface = "<interface><name>ge-0/0/0</name><description>uplink</description></interface>\n"
        let configuration = "<rpc-reply><configuration><interfaces>\n" + String(repeating: interface, count: 1_500_000 / interface.utf8.count)
            + "</interfaces></configuration></rpc-reply>"
        try configuration.write(toFile: profile + "/get-configuration.xml", atomically: true, encoding: .utf8)
        let budget = ReplyMemoryBudget(bytes: 2 << 20)
        var clients: [NETCONFClient] = []
        for _ in 0 ..< 2 {
            let transport = try PipeTransport(try careAgentExecutable(), ["simulate", "netconf", "--profile", profile])
            let client = NETCONFClient(transport: transport, memoryBudget: budget, logger: Logger.test)
            try await client.start()
            clients.append(client)
        }
        var first: RPCReply? = try await clients[0].rpc(.junos("get-configuration"))
        #expect(first?.memory?.size ?? 0 > 1 << 20, "a large reply holds its share")
        let later = clients[1]
        let second = Task { try await later.rpc(.junos("get-configuration")).memory?.size ?? 0 }
        try await Task.sleep(for: .seconds(1))
        #expect(budget.available < 1 << 20, "the second reply has not taken its share while the first lives")
        first = nil
        #expect(try await second.value > 1 << 20)
        for client in clients { await client.close() }
    }

    /// A reply that cannot get its share before the RPC's deadline is the RPC's timeout: the
    /// wait does not outlast `rpc-timeout`, and nothing is parsed outside the budget.
    @Test func waitingForTheBudgetEndsAtTheRPCTimeout() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480-large", under: dir)
        try ("<rpc-reply><configuration>" + String(repeating: "<system><host-name>r1</host-name></system>\n", count: 40_000)
            + "</configuration></rpc-reply>").write(toFile: profile + "/get-configuration.xml", atomically: true, encoding: .utf8)
        let budget = ReplyMemoryBudget(bytes: 4 << 20)
        var holder: ReplyMemoryReservation? = await budget.reserve(4 << 20)
        let client = NETCONFClient(transport: try PipeTransport(try careAgentExecutable(), ["simulate", "netconf", "--profile", profile]),
                                   memoryBudget: budget, logger: Logger.test)
        try await client.start()
        let started = ContinuousClock.now
        do {
            _ = try await client.rpc(.junos("get-configuration"), timeout: .seconds(2))
            Issue.record("the reply was parsed outside the budget")
        } catch {
            #expect("\(error)".contains("get-configuration"), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(10), "the wait outlasted the RPC timeout")
        withExtendedLifetime(holder) {}
        holder = nil
        #expect(try await eventually { budget.available == 4 << 20 }, "the timed-out wait took nothing")
        await client.close()
    }
}
