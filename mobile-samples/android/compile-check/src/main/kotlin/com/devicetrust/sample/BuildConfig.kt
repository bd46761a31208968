package com.devicetrust.sample

// Compile check only: what the Android Gradle plugin generates from
// app/build.gradle.kts (buildConfigField lines, and DEBUG), so SampleApp
// compiles here without Gradle. Not part of the app.
object BuildConfig {
    const val DEBUG: Boolean = true
    const val SERVER_URL: String = "http://10.0.2.2:8080"
    const val RP_ID: String = "http://127.0.0.1:8080"
}
