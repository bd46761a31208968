package com.devicetrust.sample

import android.app.Application
import com.devicetrust.core.BiometricPrompt
import com.devicetrust.core.Platform
import com.devicetrust.sample.flow.SignInFlow
import com.devicetrust.sample.keystore.AndroidKeystoreKeyStore
import com.devicetrust.sdk.DeviceTrustClient
import com.devicetrust.sdk.defaultConfig

/** Creates the SDK once per process, with the Android Keystore behind it. */
class SampleApp : Application() {
    lateinit var flow: SignInFlow
        private set

    override fun onCreate() {
        super.onCreate()
        val config = defaultConfig(BuildConfig.SERVER_URL, BuildConfig.RP_ID, filesDir.resolve("devicetrust").path)
            .copy(platform = Platform.ANDROID, allowInsecureHttp = BuildConfig.DEBUG)
        val sdk = DeviceTrustClient(config, AndroidKeystoreKeyStore(this))
        flow = SignInFlow(
            sdk,
            SignInFlow.Prompts(
                signIn = BiometricPrompt("Sign in", "Use your fingerprint or face", "Use password"),
                approve = BiometricPrompt("Approve sign-in", "Confirm it's you on this phone", "Cancel"),
                enable = BiometricPrompt("Turn on fingerprint or face sign-in", null, "Not now"),
                confirm = BiometricPrompt("Confirm it's you", "To change your account settings", "Use password"),
            ),
        )
        flow.start()
    }
}
