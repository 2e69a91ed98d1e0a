# The RunComfy page's curl calls (shared/seeds/runcomfy-wan-2-2-flash-t2i.txt), verbatim except:
# https://model-api.runcomfy.net is replaced by $WANMOCK_BASE, <token> by $RUNCOMFY_API_TOKEN and
# {request_id} by the id the submit returned. `wait_sim N` advances the fake clock N seconds.
submit() {
curl --request POST \
--url https://model-api.runcomfy.net/v1/models/wan-ai/wan-2-2/flash/text-to-image \
--header "Content-Type: application/json" \
--header "Authorization: Bearer <token>" \
--data '{
"prompt": "Cyberpunk alley in heavy rain, neon signs reflecting on wet asphalt, dramatic rim light, crisp details, 16 by 9"
}'
}
status() {
curl --request GET \
--url https://model-api.runcomfy.net/v1/requests/{request_id}/status \
--header "Authorization: Bearer <token>"
}
result() {
curl --request GET \
--url https://model-api.runcomfy.net/v1/requests/{request_id}/result \
--header "Authorization: Bearer <token>"
}
cancel() {
curl --request POST \
--url https://model-api.runcomfy.net/v1/requests/{request_id}/cancel \
--header "Authorization: Bearer <token>"
}
