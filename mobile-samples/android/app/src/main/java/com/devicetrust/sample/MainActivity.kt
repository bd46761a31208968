package com.devicetrust.sample

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import com.devicetrust.sample.ui.App

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val startup = (application as SampleApp).startup
        setContent {
            MaterialTheme {
                val state by startup.collectAsStateWithLifecycle()
                when (val s = state) {
                    Startup.Opening -> CircularProgressIndicator(Modifier.padding(24.dp))
                    is Startup.Ready -> App(s.flow)
                    is Startup.Failed -> Text("Sign-in is unavailable: ${s.message}", Modifier.padding(24.dp))
                }
            }
        }
    }
}
