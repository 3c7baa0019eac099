// An AdmissionReview of a pod CREATE, as the API server sends the webhook: the pod object as given (no apiVersion or
// kind of its own, as in a real review), in namespace `shop` unless said otherwise.
export function podCreateReview(pod: unknown, uid = 'u-1', namespace = 'shop'): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      object: pod,
    },
  };
}
