{{/* vim: set filetype=mustache: */}}

{{/*
The conceptfreq services and what each one needs wired in. One list drives the Deployments,
Services, HPAs and PDBs, so adding a service is one line here and one block in values.yaml.
  bus:        consumes or produces Kafka events (CONCEPTFREQ_BUS and the topic names)
  evalTopic:  consumes the evaluation shards topic (CONCEPTFREQ_TOPIC_EVAL_SHARDS)
  inference:  embeds images or texts (CONCEPTFREQ_INFERENCE)
  model:      runs one fixed model (CONCEPTFREQ_MODEL, _PRETRAINED, _PRECISION); the evaluator
              takes the model from each evaluation request instead
  vocabulary: reads the concept vocabulary (CONCEPTFREQ_VOCAB)
  image:      which image target it runs: base (no torch) or inference
  reader:     only reads the store, with store.readOnly's credentials; reachable from outside
  topic:      the kafka.topics key it consumes and `group` its consumer group's env variable
              (KEDA scales it on that group's lag)
*/}}
{{- define "conceptfreq.components" -}}
parser:    {bus: true,  evalTopic: false, inference: false, model: false, vocabulary: true,  image: base,      reader: false, topic: shards,     group: CONCEPTFREQ_PARSER_GROUP}
tagger:    {bus: true,  evalTopic: false, inference: true,  model: true,  vocabulary: true,  image: inference, reader: false, topic: shards,     group: CONCEPTFREQ_TAGGER_GROUP}
counter:   {bus: true,  evalTopic: false, inference: false, model: false, vocabulary: false, image: base,      reader: false, topic: results,    group: CONCEPTFREQ_COUNTER_GROUP}
evaluator: {bus: true,  evalTopic: true,  inference: true,  model: false, vocabulary: true,  image: inference, reader: false, topic: evalShards, group: CONCEPTFREQ_EVALUATOR_GROUP}
query:     {bus: false, evalTopic: false, inference: false, model: false, vocabulary: false, image: base,      reader: true}
reporter:  {bus: false, evalTopic: false, inference: false, model: false, vocabulary: false, image: base,      reader: true}
{{- end -}}

{{/* Names, trimmed to 63 characters because some Kubernetes name fields are limited to DNS labels. */}}
{{- define "conceptfreq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name: release-chart, or just the release name when it already contains the
chart name, so `helm install conceptfreq .` does not produce conceptfreq-conceptfreq-parser.
*/}}
{{- define "conceptfreq.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Name of one component's resources; args: (dict "root" $ "component" "parser"). The prefix is
shortened, not the suffix, so a long release name cannot make two components' names collide.
*/}}
{{- define "conceptfreq.componentName" -}}
{{- $prefix := include "conceptfreq.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-" -}}
{{- printf "%s-%s" $prefix .component -}}
{{- end -}}

{{- define "conceptfreq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every resource (Kubernetes recommended labels); args: (dict "root" $ "component" "parser") */}}
{{- define "conceptfreq.labels" -}}
helm.sh/chart: {{ include "conceptfreq.chart" .root }}
{{ include "conceptfreq.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: conceptfreq
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select one component's pods; they never change across upgrades (selectors are immutable). */}}
{{- define "conceptfreq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "conceptfreq.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* commonAnnotations as a metadata `annotations:` block, or nothing; args: the root context */}}
{{- define "conceptfreq.annotations" -}}
{{- with .Values.commonAnnotations -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{- define "conceptfreq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "conceptfreq.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference from registry/repository, tag (default: appVersion) and digest; a digest
wins over the tag because it cannot move. args: (dict "root" $ "registry" .. "repository" .. "tag" .. "digest" ..)
*/}}
{{- define "conceptfreq.imageRef" -}}
{{- $repository := .repository -}}
{{- if .registry -}}{{- $repository = printf "%s/%s" .registry .repository -}}{{- end -}}
{{- if .digest -}}
{{- printf "%s@%s" $repository .digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion .tag | toString) -}}
{{- end -}}
{{- end -}}

{{/* The image of one component; args: (dict "root" $ "component" "parser") */}}
{{- define "conceptfreq.image" -}}
{{- $spec := get (include "conceptfreq.components" .root | fromYaml) .component -}}
{{- $image := .root.Values.image -}}
{{- $repository := ternary $image.inferenceRepository $image.repository (eq $spec.image "inference") -}}
{{- include "conceptfreq.imageRef" (dict "root" .root "registry" $image.registry "repository" $repository "tag" $image.tag "digest" $image.digest) -}}
{{- end -}}

{{- define "conceptfreq.tritonImage" -}}
{{- $image := .Values.triton.image -}}
{{- include "conceptfreq.imageRef" (dict "root" . "registry" $image.registry "repository" $image.repository "tag" $image.tag "digest" $image.digest) -}}
{{- end -}}

{{/*
kafka://[user@]bootstrap[?options]: the bus URL the services parse (adapters/bus/kafka.py). TLS
and SASL become kafka-python's own options; certificates and the password are files mounted
from Secrets (conceptfreq.kafkaVolumes), so no secret appears in the URL.
*/}}
{{- define "conceptfreq.busUrl" -}}
{{- $kafka := .Values.kafka -}}
{{- $user := "" -}}
{{- if $kafka.sasl.enabled -}}
{{- $user = printf "%s@" (required "kafka.sasl.username is required with kafka.sasl.enabled" $kafka.sasl.username | urlquery) -}}
{{- end -}}
{{- $url := printf "kafka://%s%s" $user (required "kafka.bootstrapServers is required" $kafka.bootstrapServers) -}}
{{- $options := list -}}
{{- range $key, $value := $kafka.clientOptions -}}
{{- $options = append $options (printf "%s=%v" $key $value) -}}
{{- end -}}
{{- if or $kafka.tls.enabled $kafka.sasl.enabled -}}
{{- $protocol := ternary (ternary "SASL_SSL" "SASL_PLAINTEXT" $kafka.tls.enabled) "SSL" $kafka.sasl.enabled -}}
{{- $options = append $options (printf "security_protocol=%s" $protocol) -}}
{{- end -}}
{{- if $kafka.tls.enabled -}}
{{- $_ := required "kafka.tls.existingSecret (with ca.crt) is required with kafka.tls.enabled" $kafka.tls.existingSecret -}}
{{- $options = append $options "ssl_cafile=/etc/conceptfreq/kafka-tls/ca.crt" -}}
{{- if $kafka.tls.clientCertificate -}}
{{- $options = append $options "ssl_certfile=/etc/conceptfreq/kafka-tls/tls.crt" -}}
{{- $options = append $options "ssl_keyfile=/etc/conceptfreq/kafka-tls/tls.key" -}}
{{- end -}}
{{- $options = append $options (printf "ssl_check_hostname=%d" (ternary 1 0 $kafka.tls.checkHostname)) -}}
{{- end -}}
{{- if $kafka.sasl.enabled -}}
{{- $_ := required "kafka.sasl.existingSecret (the password) is required with kafka.sasl.enabled" $kafka.sasl.existingSecret -}}
{{- $options = append $options (printf "sasl_mechanism=%s" $kafka.sasl.mechanism) -}}
{{- $options = append $options "sasl_password_file=/etc/conceptfreq/kafka-sasl/password" -}}
{{- end -}}
{{- if $options -}}
{{- $url = printf "%s?%s" $url (join "&" $options) -}}
{{- end -}}
{{- $url -}}
{{- end -}}

{{- define "conceptfreq.tritonName" -}}
{{- include "conceptfreq.componentName" (dict "root" . "component" "triton") -}}
{{- end -}}

{{/* The inference URL: explicit, else this release's Triton, else in-process torch. */}}
{{- define "conceptfreq.inferenceUrl" -}}
{{- if .Values.inference.url -}}
{{- .Values.inference.url -}}
{{- else if .Values.triton.enabled -}}
{{- printf "triton://%s:%v" (include "conceptfreq.tritonName" .) .Values.triton.ports.grpc -}}
{{- else -}}
torch://
{{- end -}}
{{- end -}}

{{/*
CONCEPTFREQ_STORE, from a Secret when one is named so credentials stay out of the pod spec.
args: the root context, or (dict "root" $ "reader" true) for the read path's own credentials.
*/}}
{{- define "conceptfreq.storeEnv" -}}
{{- $root := default . .root -}}
{{- $readOnly := $root.Values.store.readOnly -}}
{{- if and .reader (or $readOnly.existingSecret $readOnly.url) }}
- name: CONCEPTFREQ_STORE
{{- if $readOnly.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ $readOnly.existingSecret }}
      key: {{ $readOnly.existingSecretKey }}
{{- else }}
  value: {{ $readOnly.url | quote }}
{{- end }}
{{- else }}
{{- include "conceptfreq.adminStoreEnv" $root }}
{{- end }}
{{- end -}}

{{- define "conceptfreq.adminStoreEnv" -}}
- name: CONCEPTFREQ_STORE
{{- if .Values.store.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.store.existingSecret }}
      key: {{ .Values.store.existingSecretKey }}
{{- else }}
  value: {{ required "store.url (or store.existingSecret) is required" .Values.store.url | quote }}
{{- end }}
{{- end -}}


{{/* The environment of one service container; args: (dict "root" $ "component" "parser") */}}
{{- define "conceptfreq.env" -}}
{{- $root := .root -}}
{{- $values := get $root.Values .component -}}
{{- $spec := get (include "conceptfreq.components" $root | fromYaml) .component -}}
- name: CONCEPTFREQ_GRPC_PORT
  value: {{ $values.grpcPort | quote }}
- name: CONCEPTFREQ_METRICS_PORT
  value: {{ $root.Values.metricsPort | quote }}
{{ include "conceptfreq.storeEnv" (dict "root" $root "reader" $spec.reader) }}
{{- if $root.Values.tls.enabled }}
- name: CONCEPTFREQ_TLS_CERT
  value: /etc/conceptfreq/tls/tls.crt
- name: CONCEPTFREQ_TLS_KEY
  value: /etc/conceptfreq/tls/tls.key
{{- if $root.Values.tls.mutual }}
- name: CONCEPTFREQ_TLS_CLIENT_CA
  value: /etc/conceptfreq/tls/ca.crt
{{- end }}
- name: CONCEPTFREQ_HEALTH_PORT
  value: {{ $root.Values.tls.healthPort | quote }}
{{- end }}
{{- if $root.Values.auth.enabled }}
- name: CONCEPTFREQ_AUTH_TOKEN_FILE
  value: {{ printf "/etc/conceptfreq/auth/%s" $root.Values.auth.existingSecretKey | quote }}
{{- end }}
{{- if $spec.bus }}
- name: CONCEPTFREQ_BUS
  value: {{ include "conceptfreq.busUrl" $root | quote }}
- name: CONCEPTFREQ_TOPIC_SHARDS
  value: {{ $root.Values.kafka.topics.shards | quote }}
- name: CONCEPTFREQ_TOPIC_RESULTS
  value: {{ $root.Values.kafka.topics.results | quote }}
- name: CONCEPTFREQ_TOPIC_DEAD_LETTER
  value: {{ $root.Values.kafka.topics.deadLetter | quote }}
- name: CONCEPTFREQ_PARTITIONS
  value: {{ $root.Values.kafka.topics.partitions | quote }}
{{- end }}
{{- if $spec.evalTopic }}
- name: CONCEPTFREQ_TOPIC_EVAL_SHARDS
  value: {{ $root.Values.kafka.topics.evalShards | quote }}
{{- end }}
{{- if $spec.inference }}
- name: CONCEPTFREQ_INFERENCE
  value: {{ include "conceptfreq.inferenceUrl" $root | quote }}
{{- end }}
{{- if $spec.model }}
{{- /* The same model the chart's Triton serves (conceptfreq.tritonModels), found there by name. */}}
- name: CONCEPTFREQ_MODEL
  value: {{ $root.Values.inference.model | quote }}
- name: CONCEPTFREQ_PRETRAINED
  value: {{ $root.Values.inference.pretrained | quote }}
- name: CONCEPTFREQ_PRECISION
  value: {{ $root.Values.inference.precision | quote }}
{{- end }}
{{- if and $spec.vocabulary $root.Values.vocabulary.existingConfigMap }}
- name: CONCEPTFREQ_VOCAB
  value: {{ printf "/etc/conceptfreq/vocabulary/%s" $root.Values.vocabulary.key | quote }}
{{- end }}
{{- range $name, $value := $values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
gRPC probes (Kubernetes' built-in grpc action calls grpc.health.v1.Health/Check, which every
conceptfreq server answers). args: (dict "root" $ "component" "parser")
*/}}
{{- define "conceptfreq.probes" -}}
{{- $values := get .root.Values .component -}}
{{- $probes := mergeOverwrite (deepCopy .root.Values.probes) (default dict $values.probes) -}}
{{- /* With TLS the probes go to the plaintext health-only port: the kubelet's gRPC probe has no TLS. */}}
{{- $port := ternary .root.Values.tls.healthPort $values.grpcPort .root.Values.tls.enabled -}}
{{- range $kind := list "startup" "liveness" "readiness" }}
{{- $probe := get $probes $kind }}
{{- if $probe.enabled }}
{{ $kind }}Probe:
  grpc:
    port: {{ $port }}
    {{- if eq $kind "readiness" }}
    # Bus workers turn this one off while stalled (lag waiting, no progress); liveness stays on.
    service: readiness
    {{- end }}
  periodSeconds: {{ $probe.periodSeconds }}
  timeoutSeconds: {{ $probe.timeoutSeconds }}
  failureThreshold: {{ $probe.failureThreshold }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The container resources of Triton: the values' CPU and memory plus the GPUs. */}}
{{- define "conceptfreq.tritonResources" -}}
{{- $resources := deepCopy .Values.triton.resources -}}
{{- if gt (int .Values.triton.gpus) 0 -}}
{{- $limits := mergeOverwrite (default dict $resources.limits) (dict "nvidia.com/gpu" (int .Values.triton.gpus)) -}}
{{- $_ := set $resources "limits" $limits -}}
{{- end -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* The migration hook's events; checked so a typo fails at render, not as a never-run Job. */}}
{{- define "conceptfreq.migrationHooks" -}}
{{- $allowed := list "pre-install" "post-install" "pre-upgrade" "post-upgrade" -}}
{{- range $event := splitList "," .Values.migration.hookEvents -}}
{{- if not (has (trim $event) $allowed) -}}
{{- fail (printf "migration.hookEvents: %q is not one of %s" (trim $event) (join ", " $allowed)) -}}
{{- end -}}
{{- end -}}
{{- .Values.migration.hookEvents | nospace -}}
{{- end -}}

{{/*
The models the chart's Triton serves: the tagger's (inference.*) first, then triton.extraModels
(e.g. every model the evaluator is asked to evaluate). Returns YAML {models: [...]}.
*/}}
{{- define "conceptfreq.tritonModels" -}}
{{- $tagger := dict "model" .Values.inference.model "pretrained" .Values.inference.pretrained "precision" .Values.inference.precision -}}
{{- toYaml (dict "models" (prepend .Values.triton.extraModels $tagger)) -}}
{{- end -}}

{{/*
The init container's script: `conceptfreq.adapters.inference.repository` once per model, writing
config.pbtxt and model.py per tower into the shared model repository volume. It only writes
configuration (the weights download when Triton loads the models), so it needs no network.
*/}}
{{- define "conceptfreq.tritonRepositoryScript" -}}
{{- $triton := .Values.triton -}}
set -eu
{{- range $entry := (include "conceptfreq.tritonModels" . | fromYaml).models }}
{{- if not $entry.model }}{{ fail "triton.extraModels: every entry needs a model" }}{{ end }}
python3 -m conceptfreq.adapters.inference.repository --out {{ $triton.modelRepository.path | squote }}
{{- printf " --model %s" ($entry.model | squote) }}
{{- /* "random" (seeded random weights) is how the services spell no --pretrained */}}
{{- if and $entry.pretrained (ne (toString $entry.pretrained) "random") }}{{ printf " --pretrained %s" ($entry.pretrained | squote) }}{{ end }}
{{- printf " --precision %s" (default "fp16" $entry.precision | squote) }}
{{- printf " --kind %s" (ternary "gpu" "cpu" (gt (int $triton.gpus) 0)) }}
{{- printf " --cache-dir %s" ("/cache/open_clip" | squote) }}
{{- with $entry.instances }}{{ printf " --instances %v" . }}{{ end }}
{{- with $entry.maxBatchSize }}{{ printf " --max-batch-size %v" . }}{{ end }}
{{- end }}
{{- end -}}


{{/* Name of the Secret with a service's TLS certificate: cert-manager's per service, or the shared one. */}}
{{- define "conceptfreq.tlsSecret" -}}
{{- if .root.Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "conceptfreq.componentName" .) -}}
{{- else -}}
{{- required "tls.existingSecret (or tls.certManager.enabled) is required with tls.enabled" .root.Values.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{/*
Volumes of one service's Secrets: its TLS certificate, the bearer token, and Kafka's CA,
client certificate and SASL password for the bus services. args: (dict "root" $ "component" "parser")
*/}}
{{- define "conceptfreq.secretVolumes" -}}
{{- $root := .root -}}
{{- $spec := get (include "conceptfreq.components" $root | fromYaml) .component -}}
{{- if $root.Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "conceptfreq.tlsSecret" . }}
{{- end }}
{{- if $root.Values.auth.enabled }}
- name: auth
  secret:
    secretName: {{ required "auth.existingSecret is required with auth.enabled" $root.Values.auth.existingSecret }}
{{- end }}
{{- if and $spec.bus $root.Values.kafka.tls.enabled }}
- name: kafka-tls
  secret:
    secretName: {{ $root.Values.kafka.tls.existingSecret }}
{{- end }}
{{- if and $spec.bus $root.Values.kafka.sasl.enabled }}
- name: kafka-sasl
  secret:
    secretName: {{ $root.Values.kafka.sasl.existingSecret }}
    items:
      - key: {{ $root.Values.kafka.sasl.existingSecretKey }}
        path: password
{{- end }}
{{- end -}}

{{/* The mounts of conceptfreq.secretVolumes; same args. */}}
{{- define "conceptfreq.secretMounts" -}}
{{- $root := .root -}}
{{- $spec := get (include "conceptfreq.components" $root | fromYaml) .component -}}
{{- if $root.Values.tls.enabled }}
- name: tls
  mountPath: /etc/conceptfreq/tls
  readOnly: true
{{- end }}
{{- if $root.Values.auth.enabled }}
- name: auth
  mountPath: /etc/conceptfreq/auth
  readOnly: true
{{- end }}
{{- if and $spec.bus $root.Values.kafka.tls.enabled }}
- name: kafka-tls
  mountPath: /etc/conceptfreq/kafka-tls
  readOnly: true
{{- end }}
{{- if and $spec.bus $root.Values.kafka.sasl.enabled }}
- name: kafka-sasl
  mountPath: /etc/conceptfreq/kafka-sasl
  readOnly: true
{{- end }}
{{- end -}}

{{/* NetworkPolicy ingress rule: Prometheus scrapes the metrics port. args: the root context */}}
{{- define "conceptfreq.scrapeIngress" -}}
- ports:
    - port: http-metrics
      protocol: TCP
  {{- with .Values.networkPolicy.prometheus }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* NetworkPolicy egress rule to the cluster DNS. args: the root context */}}
{{- define "conceptfreq.dnsEgress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  {{- with .Values.networkPolicy.dns }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* NetworkPolicy egress rule to a backing service: {peers, ports}; no peers means any destination on those ports. */}}
{{- define "conceptfreq.peerEgress" -}}
- ports:
    {{- range $port := .ports }}
    - port: {{ $port }}
      protocol: TCP
    {{- end }}
  {{- with .peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
