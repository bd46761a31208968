package com.devicetrust.sdk.android

import android.os.CancellationSignal
import com.devicetrust.sdk.PlatformKeyException
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.Executor
import java.util.concurrent.LinkedBlockingQueue

/** The prompt's coroutine glue, with a queue standing in for the main thread. */
class PromptSessionTest {
    /** Runs tasks only when [drain] is called, in order, as a Looper would. */
    private class MainQueue : Executor {
        val tasks = LinkedBlockingQueue<Runnable>()
        override fun execute(command: Runnable) {
            tasks.add(command)
        }

        fun drain() {
            while (true) (tasks.poll() ?: return).run()
        }
    }

    @Test
    fun resumesWithTheFirstOutcome() = runBlocking {
        val main = MainQueue()
        val result = async(Dispatchers.Default) {
            PromptSession.await<String>(main) { _, outcome ->
                outcome.succeeded("signed")
                outcome.failed(PlatformKeyException.Cancelled()) // a late callback: ignored
            }
        }
        while (main.tasks.isEmpty()) yield()
        main.drain()
        assertEquals("signed", result.await())
    }

    @Test
    fun aPromptTheFrameworkRefusesFailsTheCallInsteadOfThrowingOnTheMainThread() = runBlocking {
        val main = MainQueue()
        val result = async(Dispatchers.Default) {
            runCatching { PromptSession.await<String>(main) { _, _ -> throw IllegalArgumentException("Title must be set and non-empty") } }
        }
        while (main.tasks.isEmpty()) yield()
        main.drain() // would throw here if the error escaped
        val e = result.await().exceptionOrNull()
        assertTrue(e is PlatformKeyException.Other && e.reason.contains("Title must be set"), "$e")
    }

    @Test
    fun errorsReachTheCaller() = runBlocking {
        val main = MainQueue()
        val result = async(Dispatchers.Default) {
            runCatching { PromptSession.await<String>(main) { _, outcome -> outcome.failed(PlatformKeyException.BiometricLockedOut()) } }
        }
        while (main.tasks.isEmpty()) yield()
        main.drain()
        assertTrue(result.await().exceptionOrNull() is PlatformKeyException.BiometricLockedOut)
    }

    @Test
    fun cancellingTheCallCancelsTheShownPrompt() = runBlocking {
        val main = MainQueue()
        var signal: CancellationSignal? = null
        val call = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
            PromptSession.await<String>(main) { cancel, _ -> signal = cancel }
        }
        while (main.tasks.isEmpty()) yield()
        main.drain() // the prompt is up
        assertFalse(signal!!.isCanceled)
        call.cancel() // the SDK dropped the call
        main.drain()
        assertTrue(signal!!.isCanceled)
        assertTrue(call.isCancelled)
    }

    @Test
    fun aCallCancelledBeforeThePromptAppearsShowsNone() = runBlocking {
        val main = MainQueue()
        var shown = false
        val call = async(Dispatchers.Default) { PromptSession.await<String>(main) { _, _ -> shown = true } }
        while (main.tasks.isEmpty()) yield()
        call.cancel()
        call.join()
        main.drain()
        assertFalse(shown)
    }
}
