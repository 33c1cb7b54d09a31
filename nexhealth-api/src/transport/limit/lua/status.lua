
return { now, counts[1], counts[2], replicas, reserved, ahead }
