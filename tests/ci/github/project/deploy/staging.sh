#!/bin/sh
# Stand-in for the example workflow's deploy step: the demo scenario starts its own service.
echo "deploy stand-in: nothing to deploy, the demo scenario starts its own service"
