"""jupyter_client kernel provisioners that ship with Junction.

They plug into any jupyter_client ``KernelManager`` (Junction's kernels plugin included)
through the ``jupyter_client.kernel_provisioners`` entry point, chosen per kernel spec by
``metadata.kernel_provisioner.provisioner_name``:

- ``junction-netns-provisioner`` (:mod:`junction.provisioners.netns`): each kernel in a
  Linux network namespace of its own, reached over a veth pair, as a remote host would be.
"""
