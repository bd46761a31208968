pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "devicetrust-sample"
include(":app")
// The SDK's Android library, from this repository (bindings/scripts/build-android.sh
// fills its generated/ folder with the bindings and the .so for each ABI).
include(":devicetrust")
project(":devicetrust").projectDir = file("../../bindings/android/devicetrust")
