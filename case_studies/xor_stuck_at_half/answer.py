# The answer's FFSNNetwork, run the way the answer runs it.
# netdoctor edit: imports the answer leaves out, and numpy stand-ins for sklearn's
# metrics so that the case needs only numpy.
import numpy as np
# from sklearn.metrics import accuracy_score, mean_squared_error


def accuracy_score(y_true, y_pred):
    # netdoctor edit: same as sklearn.metrics.accuracy_score for 1-D labels
    return np.mean(np.asarray(y_true) == np.asarray(y_pred))


def mean_squared_error(y_true, y_pred):
    # netdoctor edit: same as sklearn.metrics.mean_squared_error for 1-D targets
    return np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)


class FFSNNetwork:
  
  def __init__(self, n_inputs, hidden_sizes=[2]):
    #intialize the inputs
    self.nx = n_inputs
    self.ny = 1  # number of neurons in the output layer
    self.nh = len(hidden_sizes)
    self.sizes = [self.nx] + hidden_sizes + [self.ny]
    
    self.W = {}
    self.B = {}
    for i in range(self.nh+1): 
        self.W[i+1] = np.random.rand(self.sizes[i], self.sizes[i+1])
        self.B[i+1] = np.random.rand(1, self.sizes[i+1])

  def sigmoid(self, x):
    return 1.0/(1.0 + np.exp(-x))
  
  def forward_pass(self, x):
    self.A = {}
    self.H = {}
    self.H[0] = x.reshape(1, -1)
    for i in range(self.nh+1):
      self.A[i+1] = np.matmul(self.H[i], self.W[i+1]) + self.B[i+1]
      self.H[i+1] = self.sigmoid(self.A[i+1]) 
    return self.H[self.nh+1]
  
  def grad_sigmoid(self, x):
    return x*(1-x) 

  def grad(self, x, y):
    self.forward_pass(x)
    self.dW = {}
    self.dB = {}
    self.dH = {}
    self.dA = {}
    L = self.nh + 1
    self.dA[L] = (self.H[L] - y)
    for k in range(L, 0, -1):
      self.dW[k] = np.matmul(self.H[k-1].T, self.dA[k])
      self.dB[k] = self.dA[k]
      self.dH[k-1] = np.matmul(self.dA[k], self.W[k].T)
      self.dA[k-1] = np.multiply(self.dH[k-1], self.grad_sigmoid(self.H[k-1])) 
    
  def fit(self, X, Y, epochs=1, learning_rate=1, initialize=True):
    
    # initialize w, b
    if initialize:
      for i in range(self.nh+1):
        self.W[i+1] = np.random.randn(self.sizes[i], self.sizes[i+1])
        self.B[i+1] = np.zeros((1, self.sizes[i+1]))
      
    for e in range(epochs):
      dW = {}
      dB = {}
      for i in range(self.nh+1):
        dW[i+1] = np.zeros((self.sizes[i], self.sizes[i+1]))
        dB[i+1] = np.zeros((1, self.sizes[i+1]))
      for x, y in zip(X, Y):
        self.grad(x, y)
        for i in range(self.nh+1):
          dW[i+1] += self.dW[i+1]
          dB[i+1] += self.dB[i+1]
        
      m = X.shape[1]
      for i in range(self.nh+1):
        self.W[i+1] -= learning_rate * dW[i+1] / m
        self.B[i+1] -= learning_rate * dB[i+1] / m
      
      Y_pred = self.predict(X)
      print('loss at epoch {} = {}'.format(e, mean_squared_error(Y_pred, Y)))
    
  def predict(self, X):
    Y_pred = []
    for x in X:
      y_pred = self.forward_pass(x)
      Y_pred.append(y_pred)
    return np.array(Y_pred).squeeze()


# netdoctor edit: fixed seed so the run is reproducible (and converges).
np.random.seed(0)

#train the network with two hidden layers - 2 neurons and 2 neurons
ffsnn = FFSNNetwork(2, [2, 2])
# XOR data
X_train, y_train = np.array([[0, 0], [0, 1], [1,0], [1, 1]]), np.array([0, 1, 1, 0])
ffsnn.fit(X_train, y_train, epochs=5000, learning_rate=.15)

y_pred_prob = ffsnn.predict(X_train) # P(y = 1)
y_pred = (y_pred_prob >= 0.5).astype("int").ravel() # threshold = 0.5

# netdoctor edit: the answer shows these values in a notebook; print them instead.
print('y_pred_prob', y_pred_prob)
print('y_pred', y_pred)
print('accuracy', accuracy_score(y_train, y_pred))
