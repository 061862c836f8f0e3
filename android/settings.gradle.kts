// Standalone build of the Pooya Android library module. In an app, include this directory as
// a module instead (settings.gradle.kts: include(":pooya"); project(":pooya").projectDir = file("…/android")).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "pooya-android"
