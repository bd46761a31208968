package com.devicetrust.sdk.android

import android.os.CancellationSignal
import com.devicetrust.sdk.PlatformKeyException
import kotlinx.coroutines.suspendCancellableCoroutine
import java.util.concurrent.Executor
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/**
 * A system prompt as a suspending call: the prompt is built and shown on
 * [Executor] (the main thread), its outcome resumes the caller once, and
 * cancelling the caller cancels the prompt's [CancellationSignal], which
 * dismisses it. Apart from the framework's prompt so it is tested on the JVM.
 */
internal object PromptSession {
    /** What the prompt's callbacks report; the first report wins, later ones are ignored. */
    interface Outcome<T> {
        fun succeeded(value: T)
        fun failed(error: PlatformKeyException)
    }

    suspend fun <T> await(executor: Executor, show: (CancellationSignal, Outcome<T>) -> Unit): T =
        suspendCancellableCoroutine { continuation ->
            val cancel = CancellationSignal()
            // On the executor, after show ran (it runs tasks in order): the
            // prompt is never shown after the caller has gone.
            continuation.invokeOnCancellation { executor.execute { cancel.cancel() } }
            val outcome = object : Outcome<T> {
                override fun succeeded(value: T) {
                    if (continuation.isActive) continuation.resume(value)
                }

                override fun failed(error: PlatformKeyException) {
                    if (continuation.isActive) continuation.resumeWithException(error)
                }
            }
            executor.execute {
                if (!continuation.isActive) return@execute
                try {
                    show(cancel, outcome)
                } catch (e: RuntimeException) {
                    // An empty title or label, conflicting options, a missing
                    // permission: the framework throws here, on the main
                    // thread, where it would crash the app and never resume.
                    outcome.failed(PlatformKeyException.Other("the system prompt could not be shown: ${e.message ?: e.javaClass.name}"))
                }
            }
        }
}
