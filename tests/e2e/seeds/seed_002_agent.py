from flask import Flask, request, jsonify
import requests
import os
app = Flask(__name__)
VOIPBIN_BASE = "https://api.voipbin.net/v1.0"
TOKEN = os.environ.get("VOIPBIN_TOKEN")
# Store session IDs per call (in production, use a database)
call_sessions = {}
@app.route('/webhook', methods=['POST'])
def webhook():
    payload = request.get_json()
    event_type = payload.get('type')
    if event_type == 'call_progressing':
        handle_call_progressing(payload['data'])
    elif event_type == 'transcript_created':
        handle_transcript(payload['data'])
    elif event_type == 'call_hangup':
        handle_call_hangup(payload['data'])
    return jsonify({'status': 'ok'}), 200
def handle_call_progressing(call):
    """Call answered — start transcription and speaking."""
    call_id = call['id']
    # Start transcription
    resp = requests.post(
        f'{VOIPBIN_BASE}/transcribes?token={TOKEN}',
        json={
            'reference_type': 'call',
            'reference_id': call_id,
            'language': 'en-US',
            'direction': 'both'
        }
    )
    transcribe_id = resp.json()['id']
    # Create speaking session
    resp = requests.post(
        f'{VOIPBIN_BASE}/speakings?token={TOKEN}',
        json={
            'reference_type': 'call',
            'reference_id': call_id,
            'language': 'en-US',
            'provider': 'elevenlabs',
            'direction': 'both'
        }
    )
    speaking_id = resp.json()['id']
    call_sessions[call_id] = {
        'transcribe_id': transcribe_id,
        'speaking_id': speaking_id
    }
    # Send initial greeting (after short delay for session to become active)
    requests.post(
        f'{VOIPBIN_BASE}/speakings/{speaking_id}/say?token={TOKEN}',
        json={'text': 'Hello, how can I help you today?'}
    )
def handle_transcript(transcript):
    """Process caller speech and respond."""
    if transcript['direction'] != 'in':
        return
    # Find the speaking session for this transcribe
    transcribe_id = transcript['transcribe_id']
    session = next(
        (s for s in call_sessions.values() if s['transcribe_id'] == transcribe_id),
        None
    )
    if not session:
        return
    speaking_id = session['speaking_id']
    # Flush any current playback
    requests.post(
        f'{VOIPBIN_BASE}/speakings/{speaking_id}/flush?token={TOKEN}'
    )
    # Generate AI response
    ai_response = call_your_llm(transcript['message'])
    # Send response to caller
    requests.post(
        f'{VOIPBIN_BASE}/speakings/{speaking_id}/say?token={TOKEN}',
        json={'text': ai_response}
    )
def handle_call_hangup(call):
    """Clean up sessions when call ends."""
    call_id = call['id']
    session = call_sessions.pop(call_id, None)
    if session:
        requests.post(
            f'{VOIPBIN_BASE}/transcribes/{session["transcribe_id"]}/stop?token={TOKEN}'
        )
        requests.post(
            f'{VOIPBIN_BASE}/speakings/{session["speaking_id"]}/stop?token={TOKEN}'
        )
def call_your_llm(text):
    """Replace with your actual LLM integration."""
    # Example: OpenAI, Anthropic, local model, etc.
    return f"I understand you said: {text}. Let me help you with that."
if __name__ == '__main__':
    app.run(host='0.0.0.0', port=8080)
