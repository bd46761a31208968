package com.devicetrust.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.dp
import com.devicetrust.sdk.OtpChannel
import com.devicetrust.sample.flow.Screen
import com.devicetrust.sample.flow.SignInFlow
import com.devicetrust.sample.flow.eventText
import java.text.DateFormat
import java.time.Instant
import java.util.Date

/** Account settings of the signed-in user, and "confirm it's you" before a change. */
@Composable
internal fun AccountScreens(s: Screen, flow: SignInFlow, busy: Boolean, act: (suspend () -> Unit) -> Unit) {
    val back = { act { flow.backToSettings() } }
    when (s) {
        is Screen.Settings -> Settings(
            s, busy,
            onChangePassword = { act { flow.openChangePassword() } },
            onChangeContact = { channel -> flow.openChangeContact(channel) },
            onRemoveMobile = { act { flow.removeMobile() } },
            onChangeSecurityCode = flow::openChangeSecurityCode,
            onEvents = { act { flow.openSecurityEvents() } },
            onCards = { act { flow.openCards() } },
            onBack = { act { flow.backToHome() } },
        )
        is Screen.ChangePassword -> ChangePassword(s, busy, onChange = { current, new -> act { flow.changePassword(current, new) } }, onBack = back)
        is Screen.ChangeContact -> ChangeContact(s, busy, onSend = { value -> act { flow.requestContactChange(s.channel, value) } }, onBack = back)
        is Screen.ConfirmContact -> ConfirmContact(
            s, busy,
            onConfirm = { code -> act { flow.confirmContactChange(code) } },
            onResend = { act { flow.resendContactCode() } },
            onBack = back,
        )
        Screen.ChangeSecurityCode -> ChangeSecurityCode(busy, onChange = { code -> act { flow.changeSecurityCode(code) } }, onBack = back)
        is Screen.SecurityEvents -> SecurityEvents(s, onBack = back)
        is Screen.Cards -> Cards(s, busy, onLink = { number, id -> act { flow.linkCard(number, id) } }, onBack = back)
        is Screen.ConfirmItIsYou -> ConfirmItIsYou(
            s, busy,
            onBiometric = { act { flow.confirmWithBiometric() } },
            onPassword = { password -> act { flow.confirmWithPassword(password) } },
            onCancel = { act { flow.cancelConfirm() } },
        )
        else -> Unit
    }
}

private fun date(at: Instant): String =
    DateFormat.getDateTimeInstance(DateFormat.MEDIUM, DateFormat.SHORT).format(Date.from(at))

@Composable
private fun Settings(
    s: Screen.Settings,
    busy: Boolean,
    onChangePassword: () -> Unit,
    onChangeContact: (OtpChannel) -> Unit,
    onRemoveMobile: () -> Unit,
    onChangeSecurityCode: () -> Unit,
    onEvents: () -> Unit,
    onCards: () -> Unit,
    onBack: () -> Unit,
) {
    var confirmRemove by remember { mutableStateOf(false) }
    Scrolling {
        Text("Account settings", style = MaterialTheme.typography.headlineSmall)
        Card(Modifier.fillMaxWidth()) {
            Column(Modifier.padding(16.dp)) {
                Text("User ID: ${s.profile.userId}")
                Text("Name: ${s.profile.name}")
                Text("E-mail: ${s.profile.email}")
                Text("Mobile: ${s.profile.mobile ?: "none (codes go to your e-mail)"}")
            }
        }
        Text("Some changes ask you to confirm it's you first.", style = MaterialTheme.typography.bodySmall)
        OutlinedButton(onClick = onChangePassword, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Change password") }
        OutlinedButton(onClick = { onChangeContact(OtpChannel.EMAIL) }, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Change e-mail") }
        OutlinedButton(onClick = { onChangeContact(OtpChannel.SMS) }, enabled = !busy, modifier = Modifier.fillMaxWidth()) {
            Text(if (s.profile.mobile == null) "Add a mobile number" else "Change mobile number")
        }
        if (s.profile.mobile != null) {
            OutlinedButton(onClick = { confirmRemove = true }, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Remove mobile number") }
        }
        OutlinedButton(onClick = onChangeSecurityCode, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Change security code") }
        OutlinedButton(onClick = onEvents, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Recent security activity") }
        OutlinedButton(onClick = onCards, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Your cards") }
        TextButton(onClick = onBack, enabled = !busy) { Text("Back") }
    }

    if (confirmRemove) {
        AlertDialog(
            onDismissRequest = { confirmRemove = false },
            title = { Text("Remove your mobile number?") },
            text = { Text("Codes and alerts will go to your e-mail only.") },
            confirmButton = { TextButton(onClick = { confirmRemove = false; onRemoveMobile() }) { Text("Remove") } },
            dismissButton = { TextButton(onClick = { confirmRemove = false }) { Text("Keep") } },
        )
    }
}

@Composable
private fun ChangePassword(s: Screen.ChangePassword, busy: Boolean, onChange: (String, String) -> Unit, onBack: () -> Unit) {
    var current by remember { mutableStateOf("") }
    var password by remember { mutableStateOf("") }
    var repeat by remember { mutableStateOf("") }
    Scrolling {
        Text("Change password", style = MaterialTheme.typography.headlineSmall)
        PasswordField(current, { current = it }, "Current password")
        NewPasswordFields(s.policy, s.userId, password, { password = it }, repeat, { repeat = it })
        Text("You'll stay logged in here; everywhere else you'll be logged out.", style = MaterialTheme.typography.bodySmall)
        Button(
            onClick = { onChange(current, password) },
            enabled = !busy && current.isNotEmpty() && newPasswordReady(s.policy, s.userId, password, repeat),
            modifier = Modifier.fillMaxWidth(),
        ) { Text("Change password") }
        TextButton(onClick = onBack, enabled = !busy) { Text("Cancel") }
    }
}

@Composable
private fun ChangeContact(s: Screen.ChangeContact, busy: Boolean, onSend: (String) -> Unit, onBack: () -> Unit) {
    val email = s.channel == OtpChannel.EMAIL
    var value by remember(s) { mutableStateOf(s.draft) }
    Text(if (email) "Change e-mail" else "Mobile number", style = MaterialTheme.typography.headlineSmall)
    s.current?.let { Text("Now: $it") }
    OutlinedTextField(
        value, { value = it.trim() },
        label = { Text(if (email) "New e-mail" else "New mobile number, e.g. +447700900123") },
        singleLine = true,
        keyboardOptions = KeyboardOptions(keyboardType = if (email) KeyboardType.Email else KeyboardType.Phone),
        modifier = Modifier.fillMaxWidth(),
    )
    Text("We'll send a code to the new ${if (email) "address" else "number"} to check it's yours.", style = MaterialTheme.typography.bodySmall)
    Button(onClick = { onSend(value) }, enabled = !busy && value.isNotBlank(), modifier = Modifier.fillMaxWidth()) { Text("Send a code") }
    TextButton(onClick = onBack, enabled = !busy) { Text("Cancel") }
}

@Composable
private fun ConfirmContact(s: Screen.ConfirmContact, busy: Boolean, onConfirm: (String) -> Unit, onResend: () -> Unit, onBack: () -> Unit) {
    var code by remember(s) { mutableStateOf("") }
    Text("Enter the code", style = MaterialTheme.typography.headlineSmall)
    Text("We sent a code to ${s.pending.destination}. Your details change when you enter it.")
    DigitsField(code, { code = it }, "6-digit code", 6, visible = true)
    Button(onClick = { onConfirm(code) }, enabled = !busy && code.length == 6, modifier = Modifier.fillMaxWidth()) { Text("Confirm") }
    OutlinedButton(onClick = onResend, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Send a new code") }
    TextButton(onClick = onBack, enabled = !busy) { Text("Cancel") }
}

@Composable
private fun ChangeSecurityCode(busy: Boolean, onChange: (String) -> Unit, onBack: () -> Unit) {
    var code by remember { mutableStateOf("") }
    var repeat by remember { mutableStateOf("") }
    Text("Change security code", style = MaterialTheme.typography.headlineSmall)
    Text("6 to 9 digits, not all the same and not a run like 123456. You'll need it if you forget your user ID or password.")
    DigitsField(code, { code = it }, "New security code", 9)
    DigitsField(repeat, { repeat = it }, "Repeat the new security code", 9)
    if (repeat.isNotEmpty() && repeat != code) {
        Text("The codes don't match", color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.bodySmall)
    }
    Button(onClick = { onChange(code) }, enabled = !busy && code.length >= 6 && code == repeat, modifier = Modifier.fillMaxWidth()) { Text("Change security code") }
    TextButton(onClick = onBack, enabled = !busy) { Text("Cancel") }
}

@Composable
private fun SecurityEvents(s: Screen.SecurityEvents, onBack: () -> Unit) {
    Text("Recent security activity", style = MaterialTheme.typography.headlineSmall)
    Text("If you don't recognise something, change your password and call the number on your card.", style = MaterialTheme.typography.bodySmall)
    TextButton(onClick = onBack) { Text("Back") }
    if (s.events.isEmpty()) Text("Nothing yet.")
    LazyColumn(verticalArrangement = Arrangement.spacedBy(8.dp)) {
        items(s.events) { e ->
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(16.dp)) {
                    Text(eventText(e.eventType))
                    Text(
                        listOfNotNull(date(e.at), e.deviceName, e.ip).joinToString(" · "),
                        style = MaterialTheme.typography.bodySmall,
                    )
                }
            }
        }
    }
}

@Composable
private fun Cards(s: Screen.Cards, busy: Boolean, onLink: (String, String) -> Unit, onBack: () -> Unit) {
    var number by remember(s) { mutableStateOf("") }
    var cardId by remember(s) { mutableStateOf("") }
    Scrolling {
        Text("Your cards", style = MaterialTheme.typography.headlineSmall)
        s.cards.forEach { c ->
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(16.dp)) {
                    Text("Card ending ${c.last4}")
                    Text("Linked ${date(c.linkedAt)}", style = MaterialTheme.typography.bodySmall)
                }
            }
        }
        Text("Link another card", style = MaterialTheme.typography.titleMedium)
        DigitsField(number, { number = it }, "Card number", 19, visible = true)
        DigitsField(cardId, { cardId = it }, "Card ID (4 digits)", 4, visible = true)
        Button(onClick = { onLink(number, cardId) }, enabled = !busy && number.length >= 12 && cardId.length == 4, modifier = Modifier.fillMaxWidth()) {
            Text("Link card")
        }
        TextButton(onClick = onBack, enabled = !busy) { Text("Back") }
    }
}

@Composable
private fun ConfirmItIsYou(s: Screen.ConfirmItIsYou, busy: Boolean, onBiometric: () -> Unit, onPassword: (String) -> Unit, onCancel: () -> Unit) {
    var password by remember { mutableStateOf("") }
    Text("Confirm it's you", style = MaterialTheme.typography.headlineSmall)
    Text("For your security, confirm it's you before this change. Then we'll make it; you won't need to enter it again.")
    if (s.biometricAvailable) {
        Button(onClick = onBiometric, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Confirm with fingerprint or face") }
        Text("Or use your password and a code:")
    }
    PasswordField(password, { password = it }, "Password")
    OutlinedButton(onClick = { onPassword(password) }, enabled = !busy && password.isNotEmpty(), modifier = Modifier.fillMaxWidth()) { Text("Continue with password") }
    TextButton(onClick = onCancel, enabled = !busy) { Text("Cancel") }
}
