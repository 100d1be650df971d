"""Check a Rivulet release on a Kubernetes cluster after `helm install`.

    python -m rivulet.clustercheck -n rivulet -r rivulet [--address riva.example.com:443 --tls]

1. waits until every Deployment, StatefulSet and the model-builder Job of the release has rolled out
   (failing fast on crash loops and image pull errors),
2. asks Triton, inside each Triton pod, whether the server and every model in its repository are ready,
3. asks every pod of every gRPC service for its gRPC health (`python -m rivulet.core.healthcheck`
   run in the pod through the Kubernetes API), and
4. runs one smoke turn per deployed API through the gRPC ingress (NLU AnalyzeIntent, ASR
   GetRivaSpeechRecognitionConfig, TTS Synthesize, Dialog TextTurn) with the official Riva client,

and prints one report. The logic is pure functions over `kubernetes.client` objects (rollout.py,
triton.py, health.py, smoke.py, report.py); cluster.py is the thin layer of API calls.
"""
