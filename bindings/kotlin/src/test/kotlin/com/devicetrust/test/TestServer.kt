package com.devicetrust.test

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/** The session's methods by their wire (RFC 8176) names. */
fun amr(session: com.devicetrust.sdk.SessionInfo): List<String> = session.authMethods.map {
    when (it) {
        com.devicetrust.sdk.AuthMethod.Password -> "pwd"
        com.devicetrust.sdk.AuthMethod.Otp -> "otp"
        com.devicetrust.sdk.AuthMethod.HardwareKey -> "hwk"
        com.devicetrust.sdk.AuthMethod.SoftwareKey -> "swk"
        com.devicetrust.sdk.AuthMethod.Biometric -> "bio"
        is com.devicetrust.sdk.AuthMethod.Other -> it.name
    }
}

const val ADMIN_TOKEN = "kotlin-tests-admin-token-0123456789abcdef"
const val RP_ID = "https://rp.kotlin.test"
const val PASSWORD = "Correct horse battery 9"

/** The workspace's real server binary on 127.0.0.1, with an outbox file. */
class TestServer private constructor(private val process: Process, val base: String, private val outbox: File) : AutoCloseable {
    private val http = HttpClient.newHttpClient()

    companion object {
        /** `extraArgs`: more `serve` flags (e.g. the attestation policy). */
        fun start(extraArgs: List<String> = emptyList()): TestServer {
            val binary = System.getProperty("devicetrust.server") ?: error("devicetrust.server is not set")
            val dir = Files.createTempDirectory("devicetrust-kotlin").toFile()
            val outbox = File(dir, "outbox.jsonl")
            val process = ProcessBuilder(
                binary, "serve", "--listen", "127.0.0.1:0", "--rp-id", RP_ID,
                "--database", "sqlite://" + File(dir, "dt.db").path, "--outbox", outbox.path,
                "--admin-token", ADMIN_TOKEN, "--ip-rate-limit", "0", *extraArgs.toTypedArray(),
            ).redirectErrorStream(true).start()
            val address = LinkedBlockingQueue<String>()
            // Read the log for the address, then keep draining it.
            // (runCatching: `close` ends the stream under the reader.)
            Thread {
                runCatching {
                    process.inputStream.bufferedReader().forEachLine { line ->
                        Regex("listening on (http://\\S+)").find(line)?.let { address.add(it.groupValues[1]) }
                    }
                }
            }.apply { isDaemon = true }.start()
            val base = address.poll(30, TimeUnit.SECONDS) ?: error("the server did not start")
            return TestServer(process, base, outbox)
        }
    }

    fun addUser(userId: String, mobile: String? = null) {
        val mobileJson = mobile?.let { "\"$it\"" } ?: "null"
        val body = """{"user_id":"$userId","name":"Jane Doe","email":"$userId@example.com","mobile":$mobileJson,"primary_market":"GB","password":"$PASSWORD"}"""
        val request = HttpRequest.newBuilder(URI.create("$base/admin/v1/users"))
            .header("content-type", "application/json")
            .header("authorization", "Bearer $ADMIN_TOKEN")
            .POST(HttpRequest.BodyPublishers.ofString(body)).build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() == 201) { "add user: ${response.statusCode()} ${response.body()}" }
    }

    /** Feeds a card to the server (admin API). */
    fun addCard(number: String, cardId: String, name: String, email: String) {
        val body = """{"card_number":"$number","card_id":"$cardId","name":"$name","email":"$email","mobile":null,"primary_market":"GB","activated":true}"""
        val request = HttpRequest.newBuilder(URI.create("$base/admin/v1/cards"))
            .header("content-type", "application/json")
            .header("authorization", "Bearer $ADMIN_TOKEN")
            .POST(HttpRequest.BodyPublishers.ofString(body)).build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() == 201) { "add card: ${response.statusCode()} ${response.body()}" }
    }

    /** The outbox lines of `purpose` to `to`, polling up to `waitMs`: the
     *  server sends some messages off the request path. */
    fun messages(purpose: String, to: String, waitMs: Long = 5_000): List<String> {
        val deadline = System.currentTimeMillis() + waitMs
        while (true) {
            val found = outbox.readLines().filter { it.contains("\"purpose\":\"$purpose\"") && it.contains("\"to\":\"$to\"") }
            if (found.isNotEmpty() || System.currentTimeMillis() >= deadline) return found
            Thread.sleep(50)
        }
    }

    fun lastOtp(userId: String): String {
        val line = outbox.readLines().last { it.contains("\"purpose\":\"otp\"") && it.contains("\"user_id\":\"$userId\"") }
        return Regex("\"code\":\"(\\d{6})\"").find(line)!!.groupValues[1]
    }

    override fun close() {
        process.destroy()
        check(process.waitFor(30, TimeUnit.SECONDS)) { "the server did not stop" }
        check(process.exitValue() == 0) { "the server exited with ${process.exitValue()}" }
    }
}
