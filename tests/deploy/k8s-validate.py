#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""k8s-validate.py [--self-test] [--daemon DOTPROXYD] DIR

Structural checks on the Kubernetes manifests under DIR (every *.yaml, recursively),
offline: no cluster and no kubectl.  Each directory holding a kustomization.yaml is
one unit; names are resolved within it.
  * every document parses and has apiVersion (the expected one for its kind), kind,
    metadata.name;
  * a kustomization lists every manifest of its directory, and only existing files;
    each configMapGenerator file exists;
  * Deployment/DaemonSet: selector.matchLabels is contained in the template's labels;
    every container has an image, CPU+memory requests and limits, readiness and
    liveness probes whose ports name a declared container port, and a securityContext
    with allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop
    ALL and add nothing but NET_BIND_SERVICE; runAsNonRoot at pod or container level;
  * dotproxyd's metrics: a TCP container port named "metrics"; args with --metrics on
    that port and on an address the kubelet and Prometheus can reach (the pod IP, so
    not loopback, which is also what a bare PORT means); the readiness probe is
    httpGet /health on it; the liveness probe does not follow upstream health
    (httpGet /health or exec dns-probe) unless it tolerates at least 5 minutes of
    failures; prometheus.io/scrape "true" and prometheus.io/port naming that port;
  * -c/--config PATH in args: PATH lies in a read-only volumeMount of a configMap
    volume whose ConfigMap (object or configMapGenerator) in the unit has that key;
  * Service: ClusterIP, ports 53/UDP and 53/TCP, a selector matching a workload whose
    container declares each targetPort with the same protocol;
  * PodDisruptionBudget: selector matches a workload, minAvailable below its replicas;
  * HorizontalPodAutoscaler (autoscaling/v2): scaleTargetRef names a Deployment of the
    same unit, a CPU Resource metric, minReplicas <= maxReplicas, CPU requests set.
  * The dotproxyd checks apply to containers running the dotproxyd image, which may
    also be a native sidecar: an init container with restartPolicy Always (any other
    init container running dotproxyd would keep the pod from ever starting); every
    container and sidecar gets the general checks.  A sidecar (dotproxyd beside app
    containers) serves plain DNS on loopback and the pod's dnsConfig points there;
    --listen-tls is not on loopback (a $(VAR) must be the pod IP from the downward
    API) and its port is a declared TCP port; --tls-cert, --tls-key and
    --tls-client-ca (required: mutual TLS) lie in a read-only, subPath-free mount of
    a secret volume (a subPath mount never sees a renewal), whose secret, when a
    Certificate of the unit writes it, has the file as a key cert-manager writes,
    and that Certificate is for "server auth";
  * Certificate / Issuer (cert-manager.io/v1): secretName set, issuerRef names an
    Issuer of the unit or a ClusterIssuer;
  * NetworkPolicy: podSelector matches a workload, every ingress port is declared by
    its containers or sidecars, and the --listen-tls port of a selected pod is let in.
With --daemon, also runs `DOTPROXYD --check-config` on each container's args, with
the -c file taken from the ConfigMap, $(VAR) expanded from the container's env (the
pod IP as 192.0.2.10) and TLS files from a secret replaced by a throwaway
certificate (openssl), so the daemon's own parser judges them.
With --render, instead runs `kubectl kustomize` on each unit (offline; exit 77 when
kubectl is missing) and checks the output: every object but the Namespace is in the
kustomization's namespace, and each workload's config volume names the generated,
content-hashed ConfigMap that the output contains.
With --self-test, also breaks the manifests in memory in known ways and checks each
break is reported (so the checks are shown to be able to fail).
Needs python3-yaml (Debian: apt-get install python3-yaml).
"""
import copy
import ipaddress
import os
import posixpath
import subprocess
import sys
import tempfile

import yaml

API = {
    "Namespace": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "DaemonSet": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "ConfigMap": "v1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "Certificate": "cert-manager.io/v1",
    "Issuer": "cert-manager.io/v1",
}
# What cert-manager writes into a Certificate's Secret.
CERT_MANAGER_KEYS = ("tls.crt", "tls.key", "ca.crt")
TLS_FILE_OPTIONS = ("--tls-cert", "--tls-key", "--tls-client-ca")
TEXT = "__text__"  # units[TEXT][path] = content of a non-YAML file a generator names
# A liveness probe on upstream health may fail this long before restarting a pod.
LIVENESS_ON_HEALTH_MIN_S = 300
WORKLOADS = ("Deployment", "DaemonSet")


def load(root):
    """Return {unit_dir: {filename: [docs]}, TEXT: {path: text}}."""
    units = {TEXT: {}}
    for d, _, files in os.walk(root):
        for f in sorted(files):
            path = os.path.join(d, f)
            if f.endswith((".yaml", ".yml")):
                with open(path, encoding="utf-8") as fh:
                    docs = [x for x in yaml.safe_load_all(fh) if x is not None]
                units.setdefault(d, {})[f] = docs
            else:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    units[TEXT][path] = fh.read()
    return units


def config_maps(unit, files, texts):
    """{name: {key: text}} for the unit's ConfigMap objects and generators."""
    out = {}
    for docs in files.values():
        for d in docs:
            if not isinstance(d, dict):
                continue
            if d.get("kind") == "ConfigMap":
                out[(d.get("metadata") or {}).get("name")] = dict(d.get("data") or {})
            if d.get("kind") == "Kustomization":
                for g in d.get("configMapGenerator") or []:
                    data = {}
                    for f in g.get("files") or []:
                        key, _, src = f.partition("=") if "=" in f else (posixpath.basename(f), "", f)
                        data[key] = texts.get(os.path.join(unit, src))
                    out[g.get("name")] = data
    return out


def arg_value(args, *names):
    """The value of the last of the given options in args (both 'OPT V' and 'OPT=V')."""
    val = None
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                val = args[i + 1]
            elif n.startswith("--") and a.startswith(n + "="):
                val = a.split("=", 1)[1]
    return val


def check_dotproxyd(w, c, tmpl, cmaps, volumes, problems):
    """The metrics server, the probes that use it, and the config file mount."""
    args = [str(a) for a in c.get("args") or []]
    ports = c.get("ports") or []
    metrics = [p for p in ports if p.get("name") == "metrics"]
    if not metrics:
        problems.append(f"{w}: no container port named metrics")
        mport = None
    else:
        mport = metrics[0].get("containerPort")
        if metrics[0].get("protocol", "TCP") != "TCP":
            problems.append(f"{w}: port metrics is not TCP")
    mval = arg_value(args, "--metrics")
    if mval is None:
        problems.append(f"{w}: args have no --metrics (no /health for the probes)")
    else:
        addr, _, port = mval.rpartition("@")
        addr = addr.strip("[]") or "127.0.0.1"
        if mport is not None and port != str(mport):
            problems.append(f"{w}: --metrics {mval} is not on the metrics containerPort {mport}")
        try:
            loop = ipaddress.ip_address(addr).is_loopback
        except ValueError:
            loop = True
            problems.append(f"{w}: --metrics {mval}: address is not an IP literal")
        if loop:
            problems.append(f"{w}: --metrics {mval} is on loopback: not reachable from the kubelet's probes or Prometheus (use 0.0.0.0 or [::])")

    mids = {"metrics", mport}
    rp = c.get("readinessProbe") or {}
    h = rp.get("httpGet")
    if not h or h.get("path") != "/health":
        problems.append(f"{w}: readinessProbe is not httpGet /health")
    elif h.get("port") not in mids:
        problems.append(f"{w}: readinessProbe /health is not on the metrics port")
    lp = c.get("livenessProbe") or {}
    lh = lp.get("httpGet") or {}
    on_upstreams = (lh.get("path") == "/health"
                    or any("dns-probe" in str(x) for x in (lp.get("exec") or {}).get("command") or []))
    tolerated = lp.get("failureThreshold", 3) * lp.get("periodSeconds", 10)
    if on_upstreams and tolerated < LIVENESS_ON_HEALTH_MIN_S:
        problems.append(f"{w}: livenessProbe follows upstream health and gives up after {tolerated}s: "
                        "it restarts pods (and empties their caches) during an upstream outage")

    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    if str(ann.get("prometheus.io/scrape")) != "true":
        problems.append(f"{w}: pod template lacks prometheus.io/scrape: \"true\"")
    elif mport is not None and str(ann.get("prometheus.io/port")) != str(mport):
        problems.append(f"{w}: prometheus.io/port {ann.get('prometheus.io/port')!r} is not the metrics port {mport}")

    cfg = arg_value(args, "-c", "--config")
    if cfg is not None:
        mount = None
        for m in c.get("volumeMounts") or []:
            mp = (m.get("mountPath") or "").rstrip("/")
            if m.get("subPath") and mp == cfg:
                mount, key = m, m["subPath"]
            elif not m.get("subPath") and cfg.startswith(mp + "/"):
                mount, key = m, cfg[len(mp) + 1:]
        if mount is None:
            problems.append(f"{w}: config file {cfg} is in no volumeMount")
            return
        if mount.get("readOnly") is not True:
            problems.append(f"{w}: the config mount {mount.get('mountPath')} is not readOnly")
        vol = volumes.get(mount.get("name"))
        cm = (vol or {}).get("configMap")
        if not cm:
            problems.append(f"{w}: volume {mount.get('name')!r} for {cfg} is not a configMap volume")
            return
        items = {i.get("path"): i.get("key") for i in cm.get("items") or []}
        key = items.get(key, key) if items else key
        data = cmaps.get(cm.get("name"))
        if data is None:
            problems.append(f"{w}: ConfigMap {cm.get('name')!r} for {cfg} is not in this kustomization")
        elif data.get(key) is None:
            problems.append(f"{w}: ConfigMap {cm.get('name')!r} has no readable key {key!r} for {cfg}")


def is_dotproxyd(c):
    image = str(c.get("image") or "")
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0] == "dotproxyd"


def pod_containers(pod):
    """Containers and native sidecars (init containers with restartPolicy Always)."""
    return list(pod.get("containers") or []) + [
        c for c in pod.get("initContainers") or [] if c.get("restartPolicy") == "Always"]


def arg_values(args, name):
    """Every value of a repeatable option (both 'OPT V' and 'OPT=V')."""
    out = []
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith(name + "="):
            out.append(a.split("=", 1)[1])
    return out


def addr_port(value, default_port):
    """'ADDR[@PORT]' (ADDR maybe [v6] or $(VAR)) -> (addr, port)."""
    addr, at, port = value.rpartition("@")
    if not at:
        addr, port = value, str(default_port)
    return addr.strip("[]"), port


def is_loopback(addr):
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def check_sidecar(w, c, pod, volumes, certs, problems):
    """dotproxyd beside app containers: plain DNS for the app on loopback, DoT with
    mutual TLS on the pod IP, certificates from a secret that can be renewed."""
    args = [str(a) for a in c.get("args") or []]
    loops = [v for v in arg_values(args, "--listen") if is_loopback(addr_port(v, 53)[0])]
    if not loops:
        problems.append(f"{w}: the sidecar serves no plain DNS on loopback (--listen 127.0.0.1@53) for the app")
    dns = (pod.get("dnsConfig") or {}).get("nameservers") or []
    if pod.get("dnsPolicy") != "None" or not dns or not any(
            addr_port(v, 53)[0] == dns[0] and addr_port(v, 53)[1] == "53" for v in loops):
        problems.append(f"{w}: the app does not ask the sidecar: the pod needs dnsPolicy None and "
                        f"dnsConfig.nameservers[0] on a loopback --listen at port 53 (got {pod.get('dnsPolicy')}, {dns})")
    env = {e.get("name"): e for e in c.get("env") or []}
    tls = arg_values(args, "--listen-tls")
    if not tls:
        problems.append(f"{w}: the sidecar has no --listen-tls: other workloads cannot use it")
    ports = c.get("ports") or []
    for v in tls:
        addr, port = addr_port(v, 853)
        if addr.startswith("$(") and addr.endswith(")"):
            ref = ((env.get(addr[2:-1]) or {}).get("valueFrom") or {}).get("fieldRef") or {}
            if ref.get("fieldPath") not in ("status.podIP", "status.podIPs"):
                problems.append(f"{w}: --listen-tls {v}: {addr} is not the pod IP from the downward API")
        elif is_loopback(addr):
            problems.append(f"{w}: --listen-tls {v} is on loopback: other workloads cannot reach it")
        if not any(str(p.get("containerPort")) == port and p.get("protocol", "TCP") == "TCP" for p in ports):
            problems.append(f"{w}: --listen-tls port {port} is not a declared TCP container port")
    if tls and arg_value(args, "--tls-client-ca") is None:
        problems.append(f"{w}: no --tls-client-ca: the sidecar's DoT listener accepts any client (no mutual TLS)")
    for opt in TLS_FILE_OPTIONS:
        path = arg_value(args, opt)
        if path is None:
            if tls and opt != "--tls-client-ca":
                problems.append(f"{w}: --listen-tls without {opt}")
            continue
        mount = None
        for m in c.get("volumeMounts") or []:
            mp = (m.get("mountPath") or "").rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                if mount is None or len(mp) > len(mount.get("mountPath", "").rstrip("/")):
                    mount = m
        if mount is None:
            problems.append(f"{w}: {opt} {path} is in no volumeMount")
            continue
        vol = volumes.get(mount.get("name")) or {}
        sec = vol.get("secret")
        if not sec:
            problems.append(f"{w}: {opt} {path} is not on a secret volume")
            continue
        if mount.get("subPath"):
            problems.append(f"{w}: {opt} {path} is a subPath mount: it never sees a renewed certificate")
        if mount.get("readOnly") is not True:
            problems.append(f"{w}: the TLS mount {mount.get('mountPath')} is not readOnly")
        key = path[len(mount.get("mountPath", "").rstrip("/")) + 1:]
        items = {i.get("path"): i.get("key") for i in sec.get("items") or []}
        key = items.get(key, key) if items else key
        cert = certs.get(sec.get("secretName"))
        if certs and cert is None:
            problems.append(f"{w}: {opt}: secret {sec.get('secretName')!r} is not the secretName of a Certificate here")
        elif cert is not None:
            if key not in CERT_MANAGER_KEYS:
                problems.append(f"{w}: {opt} {path}: cert-manager writes no key {key!r} (only {', '.join(CERT_MANAGER_KEYS)})")
            usages = (cert.get("spec") or {}).get("usages")
            if opt == "--tls-cert" and usages is not None and "server auth" not in usages:
                problems.append(f"{w}: Certificate {cert['metadata'].get('name')} lacks usage 'server auth': it cannot serve --listen-tls")


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_container(where, c, pod_sc, problems):
    name = c.get("name", "?")
    w = f"{where} container {name}"
    if not c.get("image"):
        problems.append(f"{w}: no image")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(part) or {}):
                problems.append(f"{w}: no resources.{part}.{r}")
    ports = c.get("ports") or []
    port_ids = {p.get("name") for p in ports} | {p.get("containerPort") for p in ports}
    for probe in ("readinessProbe", "livenessProbe"):
        p = c.get(probe)
        if not p:
            problems.append(f"{w}: no {probe}")
            continue
        handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in p]
        if len(handlers) != 1:
            problems.append(f"{w}: {probe} needs exactly one handler, has {handlers}")
            continue
        h = p[handlers[0]]
        if handlers[0] == "exec":
            if not h.get("command"):
                problems.append(f"{w}: {probe} exec has no command")
        elif h.get("port") not in port_ids:
            problems.append(f"{w}: {probe} port {h.get('port')!r} is not a declared container port")
    sc = c.get("securityContext")
    if not sc:
        problems.append(f"{w}: no securityContext")
        sc = {}
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{w}: allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{w}: readOnlyRootFilesystem is not true")
    if sc.get("privileged"):
        problems.append(f"{w}: privileged")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        problems.append(f"{w}: capabilities.drop lacks ALL")
    extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
    if extra:
        problems.append(f"{w}: capabilities.add beyond NET_BIND_SERVICE: {sorted(extra)}")
    if sc.get("runAsNonRoot") is not True and pod_sc.get("runAsNonRoot") is not True:
        problems.append(f"{w}: runAsNonRoot not set at pod or container level")
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if uid == 0:
        problems.append(f"{w}: runAsUser 0")


def validate(units):
    problems = []
    texts = units.get(TEXT) or {}
    for unit, files in sorted((k, v) for k, v in units.items() if k != TEXT):
        cmaps = config_maps(unit, files, texts)
        objs = []
        for f, docs in files.items():
            for i, doc in enumerate(docs):
                where = f"{os.path.join(unit, f)}[{i}]"
                if not isinstance(doc, dict):
                    problems.append(f"{where}: not a mapping")
                    continue
                kind = doc.get("kind")
                if not kind or not doc.get("apiVersion"):
                    problems.append(f"{where}: missing apiVersion or kind")
                    continue
                if kind in API and doc["apiVersion"] != API[kind]:
                    problems.append(f"{where}: {kind} apiVersion {doc['apiVersion']}, expected {API[kind]}")
                elif kind not in API:
                    problems.append(f"{where}: unexpected kind {kind}")
                if kind != "Kustomization" and not (doc.get("metadata") or {}).get("name"):
                    problems.append(f"{where}: missing metadata.name")
                objs.append((f, where, doc))

        kust = [d for f, _, d in objs if d.get("kind") == "Kustomization"]
        if len(kust) != 1:
            problems.append(f"{unit}: expected one Kustomization, found {len(kust)}")
        else:
            for g in kust[0].get("configMapGenerator") or []:
                for f in g.get("files") or []:
                    src = f.split("=", 1)[-1]
                    if os.path.join(unit, src) not in texts:
                        problems.append(f"{unit}/kustomization.yaml: configMapGenerator file {src} does not exist")
            listed = kust[0].get("resources") or []
            for r in listed:
                if r not in files:
                    problems.append(f"{unit}/kustomization.yaml: resource {r} does not exist")
            for f in files:
                if f != "kustomization.yaml" and f not in listed:
                    problems.append(f"{unit}/{f}: not listed in kustomization.yaml resources")

        by_kind = {}
        for f, where, d in objs:
            by_kind.setdefault(d.get("kind"), []).append((where, d))
        certs = {(d.get("spec") or {}).get("secretName"): d for _, d in by_kind.get("Certificate", [])}
        issuers = {(d.get("metadata") or {}).get("name") for _, d in by_kind.get("Issuer", [])}
        for where, d in by_kind.get("Certificate", []):
            spec = d.get("spec") or {}
            if not spec.get("secretName"):
                problems.append(f"{where}: Certificate without secretName")
            ref = spec.get("issuerRef") or {}
            if ref.get("kind", "Issuer") == "Issuer" and ref.get("name") not in issuers:
                problems.append(f"{where}: issuerRef {ref} names no Issuer here")
        workloads = [(w, d) for k in WORKLOADS for w, d in by_kind.get(k, [])]

        for where, d in workloads:
            spec = d.get("spec") or {}
            tmpl = spec.get("template") or {}
            tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            if not labels_match(sel, tlabels):
                problems.append(f"{where}: selector {sel} does not match template labels {tlabels}")
            pod = tmpl.get("spec") or {}
            containers = pod.get("containers") or []
            if not containers:
                problems.append(f"{where}: no containers")
            volumes = {v.get("name"): v for v in pod.get("volumes") or []}
            for c in pod.get("initContainers") or []:
                if is_dotproxyd(c) and c.get("restartPolicy") != "Always":
                    problems.append(f"{where} init container {c.get('name', '?')}: dotproxyd as an init container "
                                    "needs restartPolicy: Always (a native sidecar), or the pod never starts")
            apps = [c for c in containers if not is_dotproxyd(c)]
            for c in pod_containers(pod):
                check_container(where, c, pod.get("securityContext") or {}, problems)
                if not is_dotproxyd(c):
                    continue
                w = f"{where} container {c.get('name', '?')}"
                check_dotproxyd(w, c, tmpl, cmaps, volumes, problems)
                if apps:
                    check_sidecar(w, c, pod, volumes, certs, problems)

        def matching_workloads(selector):
            return [(w, d) for w, d in workloads
                    if labels_match(selector, ((d["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {})]

        for where, svc in by_kind.get("Service", []):
            spec = svc.get("spec") or {}
            if spec.get("type", "ClusterIP") != "ClusterIP":
                problems.append(f"{where}: type {spec.get('type')}, expected ClusterIP")
            have = {(p.get("port"), p.get("protocol", "TCP")) for p in spec.get("ports") or []}
            for want in ((53, "UDP"), (53, "TCP")):
                if want not in have:
                    problems.append(f"{where}: no port {want[0]}/{want[1]}")
            targets = matching_workloads(spec.get("selector") or {})
            if not targets:
                problems.append(f"{where}: selector {spec.get('selector')} matches no workload")
            for p in spec.get("ports") or []:
                tp, proto = p.get("targetPort", p.get("port")), p.get("protocol", "TCP")
                for w, d in targets:
                    cports = [cp for c in d["spec"]["template"]["spec"].get("containers") or []
                              for cp in c.get("ports") or []]
                    if not any((cp.get("name") == tp or cp.get("containerPort") == tp)
                               and cp.get("protocol", "TCP") == proto for cp in cports):
                        problems.append(f"{where}: targetPort {tp}/{proto} not declared by {w}")

        for where, pdb in by_kind.get("PodDisruptionBudget", []):
            spec = pdb.get("spec") or {}
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            targets = matching_workloads(sel)
            if not targets:
                problems.append(f"{where}: selector {sel} matches no workload")
            for w, d in targets:
                reps = d["spec"].get("replicas", 1)
                m = spec.get("minAvailable")
                if d.get("kind") == "Deployment" and isinstance(m, int) and m >= reps:
                    problems.append(f"{where}: minAvailable {m} >= {w} replicas {reps}: no node could ever be drained")

        for where, np in by_kind.get("NetworkPolicy", []):
            spec = np.get("spec") or {}
            sel = (spec.get("podSelector") or {}).get("matchLabels") or {}
            targets = matching_workloads(sel)
            if not targets:
                problems.append(f"{where}: podSelector {sel} matches no workload")
            allowed = set()
            for rule in spec.get("ingress") or []:
                for p in rule.get("ports") or []:
                    port, proto = p.get("port"), p.get("protocol", "TCP")
                    allowed.add((str(port), proto))
                    for w, d in targets:
                        cports = [cp for c in pod_containers(d["spec"]["template"]["spec"])
                                  for cp in c.get("ports") or []]
                        if not any((cp.get("name") == port or cp.get("containerPort") == port)
                                   and cp.get("protocol", "TCP") == proto for cp in cports):
                            problems.append(f"{where}: ingress port {port}/{proto} is not declared by {w}")
            if "Ingress" not in (spec.get("policyTypes") or ["Ingress"]):
                continue
            for w, d in targets:
                for c in pod_containers(d["spec"]["template"]["spec"]):
                    if not is_dotproxyd(c):
                        continue
                    for v in arg_values([str(a) for a in c.get("args") or []], "--listen-tls"):
                        port = addr_port(v, 853)[1]
                        if (port, "TCP") not in allowed:
                            problems.append(f"{where}: does not let clients reach the DoT port {port} of {w}")

        deployments = {d["metadata"]["name"]: d for _, d in by_kind.get("Deployment", [])}
        for where, hpa in by_kind.get("HorizontalPodAutoscaler", []):
            spec = hpa.get("spec") or {}
            ref = spec.get("scaleTargetRef") or {}
            target = deployments.get(ref.get("name")) if ref.get("kind") == "Deployment" else None
            if target is None:
                problems.append(f"{where}: scaleTargetRef {ref} names no Deployment here")
            mn, mx = spec.get("minReplicas", 1), spec.get("maxReplicas")
            if not isinstance(mx, int) or mn > mx:
                problems.append(f"{where}: minReplicas {mn} / maxReplicas {mx} invalid")
            cpu = [m for m in spec.get("metrics") or []
                   if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"]
            if not cpu:
                problems.append(f"{where}: no CPU Resource metric")
            if target is not None:
                for c in target["spec"]["template"]["spec"].get("containers") or []:
                    if "cpu" not in ((c.get("resources") or {}).get("requests") or {}):
                        problems.append(f"{where}: CPU utilisation needs a CPU request on {c.get('name')}")
    return problems


def expand_env(args, c):
    """$(VAR) in args as the kubelet expands it: from the container's env; the pod IP
    (downward API) as a documentation address."""
    env = {}
    for e in c.get("env") or []:
        ref = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if "value" in e:
            env[e.get("name")] = str(e["value"])
        elif ref in ("status.podIP", "status.podIPs"):
            env[e.get("name")] = "192.0.2.10"
    out = []
    for a in args:
        for k, v in env.items():
            a = a.replace(f"$({k})", v)
        out.append(a)
    return out


def stand_in_tls(tmp):
    """A throwaway self-signed certificate and key (the TLS files of a secret are not
    in the tree): {basename: path}, or None without openssl."""
    import shutil
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    crt, key = os.path.join(tmp, "stand-in.crt"), os.path.join(tmp, "stand-in.key")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", crt, "-subj", "/CN=stand-in", "-days", "2",
                        "-addext", "subjectAltName=DNS:stand-in"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        return None
    return {"tls.crt": crt, "ca.crt": crt, "tls.key": key}


def check_config(units, daemon):
    """Each container's args through `dotproxyd --check-config`, -c from the ConfigMap."""
    problems = []
    texts = units.get(TEXT) or {}
    with tempfile.TemporaryDirectory() as tmp:
        for unit, files in sorted((k, v) for k, v in units.items() if k != TEXT):
            cmaps = config_maps(unit, files, texts)
            for f, docs in files.items():
                for d in docs:
                    if not isinstance(d, dict) or d.get("kind") not in WORKLOADS:
                        continue
                    pod = d["spec"]["template"]["spec"]
                    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
                    for c in pod_containers(pod):
                        if not is_dotproxyd(c):
                            continue
                        w = f"{os.path.join(unit, f)} container {c.get('name')}"
                        args = expand_env([str(a) for a in c.get("args") or []], c)
                        # TLS files from a secret volume: stand-ins with the same role.
                        for opt in TLS_FILE_OPTIONS:
                            path = arg_value(args, opt)
                            if path is None:
                                continue
                            tls = stand_in_tls(tmp)
                            if tls is None or posixpath.basename(path) not in tls:
                                problems.append(f"{w}: cannot make a stand-in for {opt} {path} (openssl?)")
                                continue
                            args = [tls[posixpath.basename(path)] if a == path else a for a in args]
                        cfg = arg_value(args, "-c", "--config")
                        if cfg is not None:
                            text = None
                            for m in c.get("volumeMounts") or []:
                                mp = (m.get("mountPath") or "").rstrip("/")
                                if cfg.startswith(mp + "/") and not m.get("subPath"):
                                    cm = (volumes.get(m.get("name")) or {}).get("configMap") or {}
                                    text = (cmaps.get(cm.get("name")) or {}).get(cfg[len(mp) + 1:])
                            if text is None:
                                problems.append(f"{w}: cannot find the text of {cfg} to check")
                                continue
                            local = os.path.join(tmp, "dotproxyd.conf")
                            with open(local, "w", encoding="utf-8") as fh:
                                fh.write(text)
                            args = [local if a == cfg else a for a in args]
                        r = subprocess.run([daemon, "--check-config"] + args, capture_output=True,
                                           text=True, timeout=30, stdin=subprocess.DEVNULL)
                        out = (r.stdout + r.stderr).strip()
                        if r.returncode != 0 or out != "configuration OK":
                            problems.append(f"{w}: dotproxyd --check-config rejects its args/config "
                                            f"(exit {r.returncode}): {out.splitlines()[0] if out else ''}")
    return problems


def render(root):
    """kubectl kustomize each unit; problems, or None when kubectl is missing."""
    import shutil
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    problems = []
    units = sorted(k for k in load(root) if k != TEXT)
    for unit in units:
        r = subprocess.run([kubectl, "kustomize", unit], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            problems.append(f"{unit}: kubectl kustomize failed: {r.stderr.strip()}")
            continue
        with open(os.path.join(unit, "kustomization.yaml"), encoding="utf-8") as fh:
            kust = yaml.safe_load(fh)
        ns = kust.get("namespace")
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        cms = {d["metadata"]["name"] for d in docs if d.get("kind") == "ConfigMap"}
        for g in kust.get("configMapGenerator") or []:
            if not any(n.startswith(g["name"] + "-") for n in cms):
                problems.append(f"{unit}: rendered output has no hashed ConfigMap {g['name']}-<hash>")
        for d in docs:
            md = d.get("metadata") or {}
            if d.get("kind") != "Namespace" and md.get("namespace") != ns:
                problems.append(f"{unit}: rendered {d.get('kind')}/{md.get('name')} is in namespace {md.get('namespace')}, not {ns}")
            if d.get("kind") in WORKLOADS:
                for v in d["spec"]["template"]["spec"].get("volumes") or []:
                    ref = (v.get("configMap") or {}).get("name")
                    if ref is not None and ref not in cms:
                        problems.append(f"{unit}: rendered {d['kind']}/{md.get('name')} mounts ConfigMap {ref}, which the output lacks")
        print(f"{unit}: kubectl kustomize renders {len(docs)} objects; ConfigMaps {sorted(cms)}")
    return problems


def find(units, kind):
    for unit, files in units.items():
        if unit == TEXT:
            continue
        for docs in files.values():
            for d in docs:
                if isinstance(d, dict) and d.get("kind") == kind:
                    yield d


def first_container(units, kind="Deployment"):
    return next(find(units, kind))["spec"]["template"]["spec"]["containers"][0]


def set_arg(units, opt, value, kind="Deployment"):
    args = first_container(units, kind)["args"]
    args[args.index(opt) + 1] = value


def drop_arg(units, opt, kind="Deployment"):
    args = first_container(units, kind)["args"]
    i = args.index(opt)
    del args[i:i + 2]


def sidecar_pod(units):
    return next(d for d in find(units, "Deployment") if d["spec"]["template"]["spec"].get("initContainers"))[
        "spec"]["template"]["spec"]


def sidecar(units):
    return sidecar_pod(units)["initContainers"][0]


def set_sidecar_arg(units, opt, value):
    args = sidecar(units)["args"]
    args[args.index(opt) + 1] = value


def drop_sidecar_arg(units, opt):
    args = sidecar(units)["args"]
    i = args.index(opt)
    del args[i:i + 2]


def tls_mount(units):
    return next(m for m in sidecar(units)["volumeMounts"] if m["name"] == "dotproxyd-tls")


def tls_volume(units):
    return next(v for v in sidecar_pod(units)["volumes"] if "secret" in v)


def server_cert(units):
    return next(d for d in find(units, "Certificate") if "server auth" in d["spec"].get("usages", []))


def edit_config(units, fn):
    for path in units[TEXT]:
        if path.endswith("dotproxyd.conf"):
            units[TEXT][path] = fn(units[TEXT][path])



MUTATIONS = [
    ("selector differs from template labels",
     lambda u: next(find(u, "Deployment"))["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "other"}),
     "does not match template labels"),
    ("container without image", lambda u: first_container(u).pop("image"), "no image"),
    ("container without limits", lambda u: first_container(u)["resources"].pop("limits"), "no resources.limits"),
    ("container without readiness probe", lambda u: first_container(u).pop("readinessProbe"), "no readinessProbe"),
    ("probe on an undeclared port",
     lambda u: first_container(u)["livenessProbe"]["tcpSocket"].update({"port": 5353}), "not a declared container port"),
    ("privilege escalation allowed",
     lambda u: first_container(u)["securityContext"].update({"allowPrivilegeEscalation": True}), "allowPrivilegeEscalation"),
    ("writable root filesystem",
     lambda u: first_container(u)["securityContext"].pop("readOnlyRootFilesystem"), "readOnlyRootFilesystem"),
    ("extra capability",
     lambda u: first_container(u)["securityContext"]["capabilities"]["add"].append("NET_ADMIN"), "beyond NET_BIND_SERVICE"),
    ("capabilities not dropped",
     lambda u: first_container(u)["securityContext"]["capabilities"].pop("drop"), "drop lacks ALL"),
    ("may run as root",
     lambda u: (first_container(u)["securityContext"].pop("runAsNonRoot"),
                next(find(u, "Deployment"))["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")),
     "runAsNonRoot"),
    ("service without UDP",
     lambda u: next(find(u, "Service"))["spec"].update(
         {"ports": [p for p in next(find(u, "Service"))["spec"]["ports"] if p.get("protocol") != "UDP"]}),
     "no port 53/UDP"),
    ("service of type LoadBalancer", lambda u: next(find(u, "Service"))["spec"].update({"type": "LoadBalancer"}),
     "expected ClusterIP"),
    ("service selects nothing",
     lambda u: next(find(u, "Service"))["spec"].update({"selector": {"app": "nope"}}), "matches no workload"),
    ("service targets an undeclared port",
     lambda u: next(find(u, "Service"))["spec"]["ports"][0].update({"targetPort": "dns-quic"}), "not declared by"),
    ("PDB selects nothing",
     lambda u: next(find(u, "PodDisruptionBudget"))["spec"]["selector"].update({"matchLabels": {"app": "nope"}}),
     "matches no workload"),
    ("PDB blocks every drain",
     lambda u: next(find(u, "PodDisruptionBudget"))["spec"].update({"minAvailable": 2}), "no node could ever be drained"),
    ("HPA scales a missing Deployment",
     lambda u: next(find(u, "HorizontalPodAutoscaler"))["spec"]["scaleTargetRef"].update({"name": "gone"}),
     "names no Deployment"),
    ("HPA without CPU metric",
     lambda u: next(find(u, "HorizontalPodAutoscaler"))["spec"].update({"metrics": []}), "no CPU Resource metric"),
    ("old HPA API", lambda u: next(find(u, "HorizontalPodAutoscaler")).update({"apiVersion": "autoscaling/v1"}),
     "expected autoscaling/v2"),
    ("nameless object", lambda u: next(find(u, "PodDisruptionBudget"))["metadata"].pop("name"), "missing metadata.name"),
    ("kustomization misses a file",
     lambda u: next(find(u, "Kustomization"))["resources"].pop(), "not listed in kustomization.yaml"),
    ("kustomization lists a missing file",
     lambda u: next(find(u, "Kustomization"))["resources"].append("gone.yaml"), "does not exist"),
    ("DaemonSet container without securityContext",
     lambda u: first_container(u, "DaemonSet").pop("securityContext"), "no securityContext"),
    ("no metrics port",
     lambda u: first_container(u)["ports"].pop(), "no container port named metrics"),
    ("no --metrics in args", lambda u: drop_arg(u, "--metrics"), "no --metrics"),
    ("--metrics on loopback (the image's default)",
     lambda u: set_arg(u, "--metrics", "127.0.0.1@9153"), "on loopback"),
    ("--metrics as a bare port (which means loopback)",
     lambda u: set_arg(u, "--metrics", "9153", "DaemonSet"), "on loopback"),
    ("--metrics on another port than the declared one",
     lambda u: set_arg(u, "--metrics", "0.0.0.0@9154"), "is not on the metrics containerPort"),
    ("readiness on TCP 53 instead of /health",
     lambda u: first_container(u).update({"readinessProbe": {"tcpSocket": {"port": "dns-tcp"}}}),
     "readinessProbe is not httpGet /health"),
    ("readiness /health on the DNS port",
     lambda u: first_container(u)["readinessProbe"]["httpGet"].update({"port": "dns-tcp"}),
     "not on the metrics port"),
    ("liveness on /health with a short failure budget",
     lambda u: first_container(u, "DaemonSet").update(
         {"livenessProbe": {"httpGet": {"path": "/health", "port": "metrics"}, "failureThreshold": 3}}),
     "restarts pods"),
    ("liveness on the DNS probe",
     lambda u: first_container(u).update(
         {"livenessProbe": {"exec": {"command": ["/usr/libexec/dotproxyd/dns-probe"]}}}),
     "restarts pods"),
    ("scrape annotation on the wrong port",
     lambda u: next(find(u, "Deployment"))["spec"]["template"]["metadata"]["annotations"].update(
         {"prometheus.io/port": "53"}), "is not the metrics port"),
    ("no scrape annotation",
     lambda u: next(find(u, "DaemonSet"))["spec"]["template"]["metadata"].pop("annotations"),
     "prometheus.io/scrape"),
    ("config file outside every mount",
     lambda u: set_arg(u, "-c", "/etc/dotproxy/dotproxyd.conf"), "is in no volumeMount"),
    ("writable config mount",
     lambda u: first_container(u)["volumeMounts"][0].pop("readOnly"), "is not readOnly"),
    ("config volume names a missing ConfigMap",
     lambda u: next(find(u, "Deployment"))["spec"]["template"]["spec"]["volumes"][0]["configMap"].update(
         {"name": "dotproxy-config"}), "is not in this kustomization"),
    ("config file name not a ConfigMap key",
     lambda u: set_arg(u, "-c", "/etc/dotproxyd/dotproxy.conf", "DaemonSet"), "has no readable key"),
    ("dotproxyd init container that is not a native sidecar",
     lambda u: sidecar(u).pop("restartPolicy"), "needs restartPolicy: Always"),
    ("sidecar app pod resolving through the cluster DNS, not the sidecar",
     lambda u: sidecar_pod(u).update({"dnsPolicy": "ClusterFirst"}), "the app does not ask the sidecar"),
    ("sidecar without plain DNS on loopback",
     lambda u: set_sidecar_arg(u, "--listen", "0.0.0.0@53"), "serves no plain DNS on loopback"),
    ("sidecar DoT listener on loopback",
     lambda u: set_sidecar_arg(u, "--listen-tls", "127.0.0.1@853"), "other workloads cannot reach it"),
    ("sidecar DoT listener on a variable that is not the pod IP",
     lambda u: sidecar(u)["env"][0]["valueFrom"]["fieldRef"].update({"fieldPath": "status.hostIP"}),
     "is not the pod IP"),
    ("sidecar DoT listener on an undeclared port",
     lambda u: set_sidecar_arg(u, "--listen-tls", "$(POD_IP)@8853"), "is not a declared TCP container port"),
    ("sidecar without client certificate checks",
     lambda u: drop_sidecar_arg(u, "--tls-client-ca"), "no mutual TLS"),
    ("certificate mounted with subPath",
     lambda u: tls_mount(u).update({"subPath": "tls.crt", "mountPath": "/etc/dotproxyd/tls/tls.crt"}),
     "never sees a renewed certificate"),
    ("certificate mount writable",
     lambda u: tls_mount(u).pop("readOnly"), "TLS mount /etc/dotproxyd/tls is not readOnly"),
    ("certificate from a secret no Certificate writes",
     lambda u: tls_volume(u)["secret"].update({"secretName": "hand-made-tls"}),
     "is not the secretName of a Certificate"),
    ("key file cert-manager does not write",
     lambda u: set_sidecar_arg(u, "--tls-key", "/etc/dotproxyd/tls/key.pem"), "cert-manager writes no key"),
    ("server certificate without server auth",
     lambda u: server_cert(u)["spec"].update({"usages": ["client auth"]}), "cannot serve --listen-tls"),
    ("certificate from a missing issuer",
     lambda u: next(find(u, "Certificate"))["spec"]["issuerRef"].update({"name": "gone"}), "names no Issuer here"),
    ("network policy shutting out the DoT clients",
     lambda u: next(find(u, "NetworkPolicy"))["spec"]["ingress"].pop(0), "does not let clients reach the DoT port"),
    ("network policy for an undeclared port",
     lambda u: next(find(u, "NetworkPolicy"))["spec"]["ingress"][0]["ports"][0].update({"port": 5353}),
     "is not declared by"),
    ("network policy selecting nothing",
     lambda u: next(find(u, "NetworkPolicy"))["spec"]["podSelector"].update({"matchLabels": {"app": "nope"}}),
     "podSelector"),
    ("generator names a missing file",
     lambda u: next(find(u, "Kustomization"))["configMapGenerator"][0]["files"].append("gone.conf"),
     "configMapGenerator file gone.conf does not exist"),
]

# Judged by the daemon's own parser; run only with --daemon.
DAEMON_MUTATIONS = [
    ("unknown key in the config file",
     lambda u: edit_config(u, lambda t: t + "\ncache-sise = 100\n"), "rejects its args/config"),
    ("bad value in the config file",
     lambda u: edit_config(u, lambda t: t.replace("timeout = 3000", "timeout = soon")), "rejects its args/config"),
    ("bad option value in args",
     lambda u: set_arg(u, "--log-format", "xml"), "rejects its args/config"),
    ("plain forward-zone upstream with a TLS name",
     lambda u: edit_config(u, lambda t: t.replace("=plain:10.96.0.10\n", "=plain:10.96.0.10#kube-dns\n")),
     "rejects its args/config"),
    ("bad sidecar option value in args",
     lambda u: set_sidecar_arg(u, "--workers", "0"), "rejects its args/config"),
]


def self_test(root, daemon=None):
    units = load(root)
    base = validate(units) + (check_config(units, daemon) if daemon else [])
    if base:
        print(f"self-test: manifests not clean to start with: {base}")
        return 1
    failures = 0
    muts = [(n, m, e, False) for n, m, e in MUTATIONS]
    muts += [(n, m, e, True) for n, m, e in DAEMON_MUTATIONS] if daemon else []
    for name, mutate, expect, by_daemon in muts:
        u = copy.deepcopy(units)
        mutate(u)
        found = check_config(u, daemon) if by_daemon else validate(u)
        if any(expect in p for p in found):
            print(f"ok: '{name}' reported")
        else:
            print(f"self-test: '{name}' NOT reported (got {found})")
            failures += 1
    return 1 if failures else 0


def main(argv):
    args = argv[1:]
    selftest = "--self-test" in args
    if selftest:
        args.remove("--self-test")
    daemon = None
    if "--daemon" in args:
        i = args.index("--daemon")
        daemon = args[i + 1] if i + 1 < len(args) else None
        del args[i:i + 2]
        if not daemon:
            print(__doc__, file=sys.stderr)
            return 2
    rend = "--render" in args
    if rend:
        args.remove("--render")
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    if rend:
        problems = render(args[0])
        if problems is None:
            print("SKIP: no kubectl (Debian: kubernetes-client)")
            return 77
        for p in problems:
            print(p)
        return 1 if problems else 0
    if selftest:
        return self_test(args[0], daemon)
    units = load(args[0])
    if len(units) == 1:
        print(f"{args[0]}: no manifests found")
        return 1
    problems = validate(units) + (check_config(units, daemon) if daemon else [])
    for p in problems:
        print(p)
    if problems:
        return 1
    n = sum(len(docs) for k, files in units.items() if k != TEXT for docs in files.values())
    checked = ", args and config accepted by dotproxyd --check-config" if daemon else ""
    print(f"{args[0]}: {n} documents in {len(units) - 1} kustomization(s): clean{checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
