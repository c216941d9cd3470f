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
With --daemon, also runs `DOTPROXYD --check-config` on each container's args, with
the -c file taken from the ConfigMap, so the daemon's own parser judges them.
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
}
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
            for c in containers:
                check_container(where, c, pod.get("securityContext") or {}, problems)
                check_dotproxyd(f"{where} container {c.get('name', '?')}", c, tmpl, cmaps, volumes,
                                problems)

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
                    for c in pod.get("containers") or []:
                        w = f"{os.path.join(unit, f)} container {c.get('name')}"
                        args = [str(a) for a in c.get("args") or []]
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
