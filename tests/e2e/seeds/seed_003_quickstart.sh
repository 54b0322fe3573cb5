# seed 003's curl commands, verbatim (the docs' line number above each); one command per block.
# tests/e2e/test_seed_examples.py runs them in this order against a sandbox over HTTPS (-k).

# seed 003 line 624
$ curl -k --request POST 'https://api.voipbin.test:8443/auth/login' \
--header 'Content-Type: application/json' \
--data-raw '{
"username": "admin@localhost",
"password": "admin@localhost"
}'

# seed 003 line 69
$ curl --request POST 'https://api.voipbin.net/auth/login' \
--header 'Content-Type: application/json' \
--data-raw '{
"username": "your-voipbin-username",
"password": "your-voipbin-password"
}'

# seed 003 line 85
$ curl --request POST 'https://api.voipbin.net/v1.0/accesskeys?token=<your-token>' \
--header 'Content-Type: application/json' \
--data-raw '{
"name": "my-api-key",
"detail": "API key for automated access"
}'

# seed 003 line 112
$ curl --request GET 'https://api.voipbin.net/v1.0/calls?token=<your-token>'

# seed 003 line 114
$ curl --request GET 'https://api.voipbin.net/v1.0/calls?accesskey=<your-accesskey>'

# seed 003 line 116
$ curl --request GET 'https://api.voipbin.net/v1.0/calls' \
--header 'Authorization: Bearer <your-token>'

# seed 003 line 146
$ curl --request POST 'https://api.voipbin.net/v1.0/extensions?token=<your-token>' \
--header 'Content-Type: application/json' \
--data-raw '{
"name": "quickstart-phone",
"detail": "Quickstart softphone extension",
"extension": "quickstart1",
"password": "your-secure-password-here"
}'

# seed 003 line 280
$ curl --request PUT 'https://api.voipbin.net/v1.0/customer?token=<your-token>' \
--header 'Content-Type: application/json' \
--data-raw '{
"webhook_method": "POST",
"webhook_uri": "https://your-server.com/voipbin/events"
}'

# seed 003 line 327
$ curl --request POST 'https://api.voipbin.net/v1.0/calls?token=<your-token>' \
--header 'Content-Type: application/json' \
--data-raw '{
"source": {
"type": "tel",
"target": "<your-source-number>"
},
"destinations": [
{
"type": "extension",
"target_name": "quickstart-phone"
}
],
"actions": [
{
"type": "talk",
"option": {
"text": "Hello. This is a VoIPBIN test call. Thank you, bye.",
"language": "en-US"
}
}
]
}'

# seed 003 line 410
$ curl --request POST 'https://api.voipbin.net/v1.0/calls?token=<your-token>' \
--header 'Content-Type: application/json' \
--data-raw '{
"source": {
"type": "tel",
"target": "<your-source-number>"
},
"destinations": [
{
"type": "extension",
"target_name": "quickstart-phone"
}
],
"actions": [
{
"type": "transcribe_start",
"option": {
"language": "en-US"
}
},
{
"type": "talk",
"option": {
"text": "Hello. This is the VoIPBIN real-time voice interaction test. You can speak now and your speech will be transcribed. The call will stay open for you to test the Speaking API.",
"gender": "female",
"language": "en-US"
}
},
{
"type": "sleep",
"option": {
"duration": 600000
}
}
]
}'
